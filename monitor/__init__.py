"""Watching: settings, database and inventory, the clock, state evaluation, runner, scheduler, uptime."""

__version__ = "0.1.0"
