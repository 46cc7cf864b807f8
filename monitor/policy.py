"""A monitor's evaluation policy: how many checks confirm a change, flap limits, the retry interval.

Read from ``Monitor.policy`` (JSON) and ``Monitor.thresholds`` (JSON) and validated once when the monitor is
loaded; a bad value raises ``InvalidInput`` naming the field, so a broken row never reaches the evaluator.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.errors import InvalidInput

__all__ = ["Policy", "Thresholds", "load_policy", "load_thresholds"]


class Policy(BaseModel):
    """Confirmation counts (hysteresis: entering and leaving use separate counts) and flap detection.

    ``down_after``: consecutive DOWN checks that confirm DOWN. ``degraded_after``: consecutive DEGRADED checks
    that confirm DEGRADED (a mix of degraded and down confirms DEGRADED after ``down_after`` failing checks).
    ``up_after``: consecutive UP checks that end DOWN/DEGRADED/UNREACHABLE (and DEGRADED checks that lift
    DOWN to DEGRADED). ``flap_*``: Nagios' weighted percent state change over the last ``flap_window`` checks;
    flapping starts at ``flap_high`` and ends below ``flap_low``. ``parent_grace``: extra failing checks a
    child waits for a suspect parent to be confirmed before calling its own outage.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    down_after: int = Field(3, ge=1, le=100)
    degraded_after: int = Field(3, ge=1, le=100)
    up_after: int = Field(2, ge=1, le=100)
    retry_interval_s: float = Field(5.0, gt=0, le=3600)
    flap_window: int = Field(21, ge=3, le=100)
    flap_high: float = Field(50.0, gt=0, le=100)
    flap_low: float = Field(25.0, ge=0, le=100)
    parent_grace: int = Field(3, ge=0, le=100)
    # A canary is an internal self-check monitor: it is never held back by blindness or by parents.
    role: str = Field("customer", pattern="^(customer|canary|internal)$")

    @model_validator(mode="after")
    def _low_below_high(self) -> Policy:
        if self.flap_low >= self.flap_high:
            raise ValueError("flap_low must be below flap_high")
        return self


class Thresholds(BaseModel):
    """Latency limits with hysteresis: an UP answer slower than ``degraded_latency_s`` counts as DEGRADED,
    and a DEGRADED monitor counts as recovered only below ``recover_latency_s`` (default: the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    degraded_latency_s: float | None = Field(None, gt=0)
    recover_latency_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _recover_not_above(self) -> Thresholds:
        if self.recover_latency_s is not None:
            if self.degraded_latency_s is None or self.recover_latency_s > self.degraded_latency_s:
                raise ValueError("recover_latency_s needs degraded_latency_s and must not exceed it")
        return self


def _load(model: type[BaseModel], field: str, raw: dict[str, Any] | None):
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{field}.{where}" if where else field, err["msg"]) from None


def load_policy(raw: dict[str, Any] | None) -> Policy:
    return _load(Policy, "policy", raw)


def load_thresholds(raw: dict[str, Any] | None) -> Thresholds:
    return _load(Thresholds, "thresholds", raw)
