"""The four things the playbooks ask (ping, company present/absent, user present), as functions
of plain arguments: what the Ansible module powerview_grafana calls, and what tests call."""

from __future__ import annotations

import re
from pathlib import Path

from . import render
from . import settings as grafana_settings
from .accounts import DefaultUser
from .client import Grafana, GrafanaError
from .company import Company, ProvisioningError, Run, check_name
from .config_api import ConfigApiError
from .render import TemplateError

FAILURES = (grafana_settings.ConfigError, GrafanaError, ProvisioningError, ConfigApiError, TemplateError)


def validate(
    company: str | None = None,
    campaign: str | None = None,
    user_login: str | None = None,
    user_email: str | None = None,
    user_password: str | None = None,
) -> None:
    """The names and user fields given, with the parser's name rules: before any API call."""
    if company is not None:
        check_name("company", company, "company_name")
    if campaign:
        check_name("campaign", campaign, "campaign_name")
    if user_login is not None:
        check_name("user", user_login, "user_login")
    if user_email and not (isinstance(user_email, str) and re.fullmatch(r"[^@\s]+@[^@\s]+", user_email)):
        raise ProvisioningError("user_email must be an email address such as jdoe@example.com")
    if user_password and len(user_password) < 8:
        raise ProvisioningError("user_password must be at least 8 characters")


def run(
    state: str,
    *,
    check: bool = False,
    company: str | None = None,
    campaign: str | None = None,
    company_steps: bool = True,
    force_company: bool = False,
    refresh_dashboard: bool = False,
    require_company: bool = False,
    influx_token: str | None = None,
    influx_token_id: str | None = None,
    user_login: str | None = None,
    user_email: str | None = None,
    user_name: str | None = None,
    user_password: str | None = None,
    templates_dir: str | Path | None = None,
    settings: grafana_settings.GrafanaSettings | None = None,
) -> dict:
    """Raises one of FAILURES with a message for the operator (never a secret)."""
    validate(company, campaign, user_login, user_email, user_password)
    s = settings or grafana_settings.load()
    grafana = Grafana(s)
    info = grafana.check_connection()
    if state == "ping":
        result = {
            "changed": False,
            "changes": [],
            "notes": [],
            "tenancy": s.tenancy,
            "org": info.get("name", ""),
            "message": f"Grafana at {s.url} answers; tenancy {s.tenancy}",
        }
        if templates_dir:
            render.template_for(Path(templates_dir), s.datasource_type)  # before the token is made
        if company:
            marker = s.data_dir / company / ".company.created"
            result.update(marker=str(marker), company_steps=bool(force_company) or not marker.exists())
        if company and user_login and not require_company and s.has_admin and result["company_steps"]:
            # the default user's login (company_user_login_override) owned by another company:
            # refused before the token tool, which would make a bucket
            from .users import Owners

            Owners(Company(Run(grafana), s, company)).check_add(user_login)
        if company and require_company:  # add-user: before the token tool, which would make a bucket
            c = Company(Run(grafana), s, company)
            if (c.find_org() if s.tenancy == "org" else c.find_team()) is None:  # reads only
                where = "Organisation" if s.tenancy == "org" else "Team"
                raise ProvisioningError(
                    f"{where} {company} not found in Grafana: provision the company first (create_grafana_resources.yml)."
                )
            if user_login and s.has_admin:  # issue 17: another company's user, refused before the token tool
                from .users import Owners

                Owners(c).check_add(user_login)
        return result
    r = Run(grafana, check=check)
    c = Company(r, s, company or "", templates_dir=Path(templates_dir) if templates_dir else None)
    if state == "company_present":
        result = c.present(
            token=influx_token,
            token_id=influx_token_id,
            company_steps=company_steps,
            campaign=campaign,
            refresh_dashboard=refresh_dashboard,
            default_user=DefaultUser(user_login or "", user_email or "", user_password or ""),
        )
        where = f"organisation {company}" if s.tenancy == "org" else f"team {company}"
        result["message"] = (
            f"{company}: {where}, folder {result['folder_uid']}, data source "
            f"{c.names['datasource_name']}, dashboard {c.names['dashboard_uid']}"
            + (f", campaign {campaign}" if campaign else "")
            + ("" if company_steps else " (company-level steps skipped: marker present)")
        )
        return result
    if state == "company_absent":
        result = c.absent(user_login or None)
        result["message"] = (
            f"{company}: Grafana resources removed; the InfluxDB bucket {company} and its data are kept."
        )
        return result
    if state == "user_present":
        if not s.has_admin:
            raise ProvisioningError(
                "Grafana's user API needs basic auth of a Grafana server admin: set "
                "GRAFANA_USERNAME and GRAFANA_PASSWORD."
            )
        return c.add_user(
            user_login or "",
            user_email or "",
            user_name or "",
            user_password or "",
            token=influx_token,
            token_id=influx_token_id,
        )
    raise ProvisioningError(f"unknown state {state!r}")
