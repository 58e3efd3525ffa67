"""Motion gating: decides, per camera and frame, whether a frame needs the face detector.

An entrance is empty most of the day; a frame that differs from the scene's background model nowhere
by more than sensor noise and slow lighting changes needs no face detector: its result is the previous
frame's. The check runs where a camera's frames are sequential (capture, `maskwatch detect`) and costs
well under a millisecond: the frame is shrunk to `WIDTH` pixels wide, blurred, corrected for a global
brightness shift, and compared with a running-average background (what NVRs do).

Public API:
- `MotionConfig`: the per-camera `motion:` settings (`enabled`, `threshold`, `min_area`, `hold_s`,
  `keyframe_s`).
- `MotionGate(config, ignore=())`: `.needs_detector(image, t) -> bool` for each frame in order (t in
  seconds); `.last_reason` says why ("motion", "hold", "keyframe", "first", "off" or "still"). `ignore`:
  polygons in frame coordinates (0..1) where change never counts as motion (a clock, a screen): the
  camera's ignore zones (shared/zones.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

WIDTH = 160  # pixels: frames are compared at this width
BACKGROUND_RATE = 0.15  # share of each new frame blended into the background: a ghost fades in about 1 s


class MotionConfig(BaseModel):
    """Per-camera motion gating (`cameras[].motion` in the config; `maskwatch detect --full` turns it off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="skip the face detector on frames without motion")
    threshold: int = Field(20, ge=1, le=255, description="grey-level difference from the background that counts "
                           "as changed (after a small blur and a global brightness correction)")
    min_area: float = Field(0.0015, gt=0, le=1, description="share of the frame that must change to count as motion "
                            "(0.0015 of 640x480 is about a 18x18 pixel patch)")
    hold_s: float = Field(1.0, ge=0, le=60, description="frames this long after motion are detected too")
    keyframe_s: float = Field(2.0, gt=0, le=60, description="a full frame at least this often, so a person "
                              "standing still is found and kept")


class MotionGate:
    """The motion state of one camera; feed it every frame, in order."""

    def __init__(self, config: MotionConfig | None = None,
                 ignore: Sequence[Sequence[tuple[float, float]]] = ()) -> None:
        self.config = config or MotionConfig()
        self.ignore = [np.asarray(polygon, np.float32).reshape(-1, 2) for polygon in ignore]
        self.last_reason = "first"
        self._background: np.ndarray | None = None
        self._watched: np.ndarray | None = None  # pixels outside the ignore zones
        self._last_motion = self._last_full = float("-inf")

    def needs_detector(self, image: np.ndarray, t: float) -> bool:
        """True when the frame (BGR or grey, taken at `t` seconds) must go through the face detector."""
        if not self.config.enabled:
            self.last_reason = "off"
            return True
        moved = self._moved(image)
        if moved:
            self._last_motion = t
        if moved is None:
            reason = "first"
        elif moved:
            reason = "motion"
        elif t - self._last_motion <= self.config.hold_s:
            reason = "hold"
        elif t - self._last_full >= self.config.keyframe_s or t < self._last_full:
            reason = "keyframe"
        else:
            reason = "still"
        self.last_reason = reason
        if reason != "still":
            self._last_full = t
        return reason != "still"

    def _moved(self, image: np.ndarray) -> bool | None:
        """Whether the frame differs from the background (None for the first frame or a new frame size)."""
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        height = max(1, round(grey.shape[0] * WIDTH / grey.shape[1]))
        small = cv2.GaussianBlur(cv2.resize(grey, (WIDTH, height), interpolation=cv2.INTER_AREA), (5, 5), 0)
        small = small.astype(np.float32)
        if self._background is None or self._background.shape != small.shape:
            self._background, self._watched = small, self._mask(small.shape)
            return None
        shift = float(small.mean() - self._background.mean())  # global lighting change, not motion
        changed = cv2.absdiff(small, self._background + shift) > self.config.threshold
        if self._watched is not None:
            changed &= self._watched
        cv2.accumulateWeighted(small, self._background, BACKGROUND_RATE)
        return int(np.count_nonzero(changed)) >= self.config.min_area * small.size

    def _mask(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """True where change counts (outside every ignore polygon), None when nothing is ignored."""
        if not self.ignore:
            return None
        mask = np.ones(shape[:2], np.uint8)
        size = np.array([shape[1], shape[0]], np.float32)
        cv2.fillPoly(mask, [np.round(polygon * size).astype(np.int32) for polygon in self.ignore], 0)
        return mask.astype(bool)
