"""The `review:` section of the camera file: which faces the tracker queues for a human look."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReviewConfig(BaseModel):
    """Review sampling and queue bounds. Off by default: crops of people's faces are kept only when asked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="queue face crops for review (privacy: off unless turned on)")
    low_confidence: float = Field(0.75, ge=0, le=1, description="a track whose mean confidence is below this")
    split_share: float = Field(0.7, ge=0, le=1, description="a track whose majority label has fewer frames")
    flips: int = Field(2, ge=1, description="a track whose per-frame label changes this often")
    sample_every: int = Field(50, ge=0, description="also every Nth person of each label per camera (0 = none)")
    min_frames: int = Field(3, ge=1, description="people seen in fewer frames are never queued")
    max_items: int = Field(500, ge=1, description="unlabelled items kept at most (the oldest go first)")
    max_age_s: float = Field(7 * 86400.0, gt=0, description="unlabelled items older than this are dropped")
