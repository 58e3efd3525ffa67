"""The `tracker:` section of the config: people tracking, frame reordering and camera leases."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrackerConfig(BaseModel):
    """Tracker service options (tracking and voting settings are those of docs/people.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lost_after_s: float = Field(2.5, gt=0, description="a track unseen this long has ended (a person turning "
                                "away for 2 s stays one person; see docs/entrances.md)")
    min_frames: int = Field(3, ge=1, description="shorter tracks end without a person record")
    switch_margin: float = Field(1.5, ge=0, description="evidence lead another label needs to win a track")
    activation_score: float = Field(0.6, gt=0, lt=1, description="detector score needed to start a track")
    reorder_window_s: float = Field(1.0, ge=0, description="longest wait for an earlier frame a dead worker held")
    lease_ttl_s: float = Field(3.0, gt=0.5, description="a dead tracker's cameras move after this long")
    static_after_s: float = Field(60.0, gt=0, description="a face whose box barely moves this long is static "
                                  "(a poster or screen): never counted as a person, an entry or alerted on")
    static_motion: float = Field(0.15, gt=0, le=2, description="'barely moves': its centre stays within this "
                                 "many face widths")
    static_forget_s: float = Field(3600.0, gt=0, description="a static spot no face was seen at for this long "
                                   "is forgotten (faces there start as static until they move)")
    line_margin: float = Field(0.03, ge=0, lt=0.5, description="hysteresis band each side of a counting line "
                               "(frame fraction): a face must leave it on the other side to cross")

    def people_options(self) -> dict[str, Any]:
        """Keyword options for `PeopleTracker`."""
        return {"lost_after_s": self.lost_after_s, "min_frames": self.min_frames,
                "switch_margin": self.switch_margin, "activation_score": self.activation_score}

    def entrance_options(self) -> dict[str, Any]:
        """Keyword options for `EntranceCounter` (shared/entrances.py)."""
        return {"static_after_s": self.static_after_s, "static_motion": self.static_motion,
                "static_forget_s": self.static_forget_s, "line_margin": self.line_margin}
