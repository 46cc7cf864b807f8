"""The inventory file's schema (pydantic). Names are the keys that tie entries together."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.models import DeviceKind
from monitor.policy import Policy

__all__ = ["InventoryDoc", "MonitorEntry", "LocationEntry", "COMMON_MONITOR_KEYS"]

Name = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatacenterEntry(_Entry):
    name: str = Name
    display_name: str = ""
    location: str = ""


class LocationEntry(_Entry):
    """A place monitors are checked from by a ``negahban agent``; ``canaries`` (``kind:target`` or a URL, as
    NEGAHBAN_CANARIES) are its own self-check: when all fail the location is blind and left out of votes."""

    name: str = Name
    display_name: str = Field("", max_length=200)
    canaries: list[str] = Field([], max_length=20)


class DeviceEntry(_Entry):
    name: str = Name
    kind: DeviceKind
    address: str | None = None
    datacenter: str | None = None
    parent: str | None = None
    # How to reach the device's SNMP agent (SnmpSpec fields, plus interval and uptime_monitor); a device
    # that declares it gets an SNMP uptime monitor by default (see monitor.inventory_devices).
    snmp: dict[str, Any] | None = None


class ServiceEntry(_Entry):
    name: str = Name
    display_name: str = ""
    public_status: bool = False
    # The status page's heading for the service (e.g. "میزبانی وب"); services without one are listed alone.
    status_group: str = Field("", max_length=100)


class CustomerEntry(_Entry):
    name: str = Name
    display_name: str = ""
    verified: bool = False
    email: str | None = None
    phone: str | None = None
    services: list[ServiceEntry] = []


class ServerEntry(_Entry):
    name: str = Name
    address: str = Field(min_length=1, max_length=255)
    datacenter: str | None = None
    parent: str | None = None  # a network device
    service: str | None = None


COMMON_MONITOR_KEYS = {"name", "kind", "interval", "enabled", "server", "device", "service", "policy", "locations",
                       "quorum"}


class MonitorEntry(BaseModel):
    """A monitor: the common keys below, plus the fields of its kind's probe spec (``probes.SPECS``)."""

    model_config = ConfigDict(extra="allow")

    name: str = Name
    kind: str
    # The longest any kind allows (domain: daily); each kind's own default and cap (``SpecBase.default_interval_s``,
    # ``max_interval_s``: 60 s and 3600 s for most) are applied in ``monitor.inventory`` where the kind is known.
    interval: float = Field(60.0, ge=5, le=86400)
    enabled: bool = True
    server: str | None = None
    device: str | None = None
    service: str | None = None
    policy: Policy = Policy()
    # The locations that check it (default: the central one alone), and how many must see a failure before
    # DOWN (default: a majority of the healthy ones; see monitor.quorum).
    locations: list[str] = Field([], max_length=20)
    quorum: int | None = Field(None, ge=1, le=20)

    @model_validator(mode="after")
    def _one_subject(self) -> MonitorEntry:
        if self.server and self.device:
            raise ValueError("a monitor watches a server or a device, not both")
        return self

    def spec_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class InventoryDoc(_Entry):
    locations: list[LocationEntry] = []
    datacenters: list[DatacenterEntry] = []
    devices: list[DeviceEntry] = []
    customers: list[CustomerEntry] = []
    servers: list[ServerEntry] = []
    monitors: list[MonitorEntry] = []
