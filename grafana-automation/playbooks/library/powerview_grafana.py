#!/usr/bin/python
"""Ansible module powerview_grafana: a PowerView company in Grafana, in one task.

The logic is plain Python in the installed `powerview` package (powerview.onboarding.grafana), unit-tested
without ansible-playbook; this file only maps the task's arguments to it. The play must run the
module with the interpreter that has `powerview` installed (the project's virtualenv):
`ansible_python_interpreter: "{{ ansible_playbook_python }}"`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: powerview_grafana
short_description: Provision, check or delete a PowerView company in Grafana
description:
  - Reads the settings (GRAFANA_URL, GRAFANA_USERNAME, GRAFANA_PASSWORD, GRAFANA_API_TOKEN,
    GRAFANA_TENANCY, GRAFANA_DATASOURCE_TYPE, CONFIG_API_URL, CONFIG_API_TOKEN, ...) from the
    environment, then the project's .env (or POWERVIEW_ENV_FILE).
  - Reads every resource before writing it; writes only what is missing or differs (a second
    run reports changed=false). Check mode writes nothing and lists what would be written in
    C(changes). Diff mode returns before/after without secrets.
options:
  state:
    description: ping (Grafana answers and takes the credentials), company_present, company_absent, user_present.
    choices: [ping, company_present, company_absent, user_present]
    required: true
    type: str
  company: {description: The company (team, organisation, bucket name)., type: str}
  campaign: {description: The campaign (checked with the name rules only)., type: str}
  company_steps: {description: Run the company-level steps (false once the marker exists)., type: bool, default: true}
  force_company: {description: With state=ping, report company_steps=true even when the marker exists., type: bool, default: false}
  refresh_dashboard: {description: With state=company_present, re-render the existing company dashboard (its permissions and the customer's panels kept)., type: bool, default: false}
  require_company: {description: With state=ping, fail unless the company's team (org tenancy, organisation) exists., type: bool, default: false}
  influx_token: {description: The read-only InfluxDB token of the bucket (company_present, user_present)., type: str, no_log: true}
  influx_token_id: {description: The InfluxDB authorization id of that token (not secret)., type: str}
  user_login: {description: "The user (user_present), the user to delete (company_absent), or the login of the default user to create or adopt (company_present; ping: checked before any write)", type: str}
  user_email: {description: "The user's email (user_present; company_present: the default user's, when created; none given, Grafana uses the login)", type: str}
  user_name: {description: The user's display name (user_present)., type: str}
  user_password: {description: "The user's password (user_present; company_present: the default user's, when created; none given, a random one in the secrets folder)", type: str, no_log: true}
  templates_dir: {description: The folder of the dashboard templates., type: path}
"""

RETURN = r"""
changes: {description: One line per write done (or, in check mode, that would be done)., type: list}
notes: {description: Things the operator should know (nothing failed)., type: list}
message: {description: A one-line summary., type: str}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (Ansible: the docs come first)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "required": True,
                "choices": ["ping", "company_present", "company_absent", "user_present"],
            },
            "company": {"type": "str"},
            "campaign": {"type": "str"},
            "company_steps": {"type": "bool", "default": True},
            "force_company": {"type": "bool", "default": False},
            "refresh_dashboard": {"type": "bool", "default": False},
            "require_company": {"type": "bool", "default": False},
            "influx_token": {"type": "str", "no_log": True},
            "influx_token_id": {"type": "str"},
            "user_login": {"type": "str"},
            "user_email": {"type": "str"},
            "user_name": {"type": "str"},
            "user_password": {"type": "str", "no_log": True},
            "templates_dir": {"type": "path"},
        },
        required_if=[
            ("state", "company_present", ["company"]),
            ("state", "company_absent", ["company"]),
            ("state", "user_present", ["company", "user_login"]),
        ],
        supports_check_mode=True,
    )
    try:
        from powerview.onboarding.grafana import actions
    except ImportError as exc:
        module.fail_json(
            msg=f"the powerview package is not importable by {__import__('sys').executable} ({exc}): "
            "run ansible-playbook from the project's virtualenv (make venv)"
        )
    p = module.params
    try:
        result = actions.run(
            p["state"],
            check=module.check_mode,
            company=p["company"],
            campaign=p["campaign"],
            company_steps=p["company_steps"],
            force_company=p["force_company"],
            refresh_dashboard=p["refresh_dashboard"],
            require_company=p["require_company"],
            influx_token=p["influx_token"],
            influx_token_id=p["influx_token_id"],
            user_login=p["user_login"],
            user_email=p["user_email"],
            user_name=p["user_name"],
            user_password=p["user_password"],
            templates_dir=p["templates_dir"],
        )
    except actions.FAILURES as exc:
        module.fail_json(msg=str(exc))
    diff = result.pop("diff", None)
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
