"""Watching: settings, database and inventory, the clock, state evaluation, runner, scheduler, uptime."""
