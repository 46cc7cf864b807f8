"""Probes: one file per kind, one signature, one registry entry each.

``PROBERS[kind](spec, ctx) -> ProbeResult`` and ``SPECS[kind]`` is that kind's pydantic spec model.
Adding a kind is one file and one line here.
"""

from probes.base import Outcome, ProbeContext, ProbeResult, SpecBase
from probes.http import HttpSpec, probe_http

__all__ = ["Outcome", "ProbeContext", "ProbeResult", "SpecBase", "PROBERS", "SPECS", "HttpSpec"]

PROBERS = {
    "http": probe_http,
}

SPECS = {
    "http": HttpSpec,
}
