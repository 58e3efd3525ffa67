"""The `tracker:` section of the config: people tracking, frame reordering and camera leases."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrackerConfig(BaseModel):
    """Tracker service options (tracking and voting settings are those of docs/people.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lost_after_s: float = Field(1.0, gt=0, description="a track unseen this long has ended")
    min_frames: int = Field(3, ge=1, description="shorter tracks end without a person record")
    switch_margin: float = Field(1.5, ge=0, description="evidence lead another label needs to win a track")
    activation_score: float = Field(0.6, gt=0, lt=1, description="detector score needed to start a track")
    reorder_window_s: float = Field(1.0, ge=0, description="longest wait for an earlier frame a dead worker held")
    lease_ttl_s: float = Field(3.0, gt=0.5, description="a dead tracker's cameras move after this long")

    def people_options(self) -> dict[str, Any]:
        """Keyword options for `PeopleTracker`."""
        return {"lost_after_s": self.lost_after_s, "min_frames": self.min_frames,
                "switch_margin": self.switch_margin, "activation_score": self.activation_score}
