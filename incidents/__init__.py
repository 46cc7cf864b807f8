"""Outages: the incident engine, maintenance windows, the Alertmanager receiver, the notification outbox."""
