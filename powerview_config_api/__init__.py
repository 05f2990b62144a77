"""powerview-config-api: the channel catalogue and the series configuration of PowerView's
dashboards (FastAPI + SQLite). Contract: docs/config-api.md."""
