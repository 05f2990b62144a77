"""Grafana provisioning of PowerView companies, in plain Python.

- `settings`  the settings the provisioning reads (and nothing else)
- `names`     the Grafana names and uids of a company and of its users' views (one derivation)
- `client`    Grafana's HTTP API: one call, one clear error; organisation header; no secrets in errors
- `config_api` the client-id registration in powerview-config-api
- `company`   a company's resources (team or organisation, folder, datasource, dashboard, default user)
              and its users' views (datasource and dashboard of add-user), created, checked, deleted;
              owners marked in jsonData, collisions refused; check mode and diffs computed here
- `tenancy`   the migration of a company between `team` and `org` tenancy

The Ansible module `grafana-automation/playbooks/library/powerview_grafana.py` is a thin wrapper.
"""
