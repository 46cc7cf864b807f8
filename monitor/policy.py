"""How a monitor's checks become a state: confirmation counts and the retry interval."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Policy"]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Consecutive failing checks needed to confirm DOWN / DEGRADED, and passing checks to confirm recovery.
    down_after: int = Field(2, ge=1, le=20)
    degraded_after: int = Field(2, ge=1, le=20)
    up_after: int = Field(2, ge=1, le=20)
    # After a first failure, check again this soon instead of waiting a whole interval.
    retry_interval_s: float = Field(5.0, gt=0, le=3600)
