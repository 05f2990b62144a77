"""PowerView: ingestion of T302 logger files into InfluxDB 2 and Grafana onboarding."""

__version__ = "2.2.0"
