"""Metrics, the web app (JSON API, NOC screen, customer portal, status page), reports, Grafana and alert rules."""
