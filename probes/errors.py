"""Errors of the ``probes`` package.

A target that is down is data (a ``ProbeResult``), never an exception. These errors are for start-up and
configuration problems only:

    ProbeError                 root; ``probes`` is the lowest layer and may not import ``monitor.errors``
    └── IcmpUnavailable        neither raw nor datagram ICMP sockets can be opened; says what to change
"""

from __future__ import annotations

__all__ = ["ProbeError", "IcmpUnavailable"]


class ProbeError(Exception):
    """Root of every error the probes package raises on purpose."""


class IcmpUnavailable(ProbeError):
    """ICMP probes cannot run in this process; the message names the setting to change."""
