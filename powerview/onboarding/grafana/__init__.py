"""Grafana provisioning of PowerView companies, in plain Python.

- `settings`     the settings the provisioning reads (and nothing else)
- `names`        the Grafana names and uids of a company and of its users' views (one derivation)
- `client`       Grafana's HTTP API: one call, one clear error; organisation header; no secrets in errors
- `config_api`   the client-id registration in powerview-config-api
- `company`      the façade: a company present (or checked), a user added, the company deleted; its
                 parts, one resource each, on the shared `scope` (run, check mode and diffs, names,
                 views, team or organisation): `membership`, `folders`, `permissions`,
                 `datasources` (owners marked in jsonData, collisions refused), `dashboards`,
                 `client_ids`, `accounts` (users, the default user; ownership in `users`), `removal`
- `actions`      what the Ansible module asks for, on `company`
- `render`       the dashboard templates
- `tenancy`      the migration of a company between `team` and `org` tenancy

The Ansible module `grafana-automation/playbooks/library/powerview_grafana.py` is a thin wrapper.
"""
