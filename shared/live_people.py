"""People on live cameras (the detector service's post-processing): one PeopleTracker per camera, alerts.

Public API:
- `LivePeople(fps_by_camera=None, default_fps=10.0, alerts=None, **tracker_options)`
- `.process(result) -> list[FrameResult | PersonRecord]`: the result with track ids and labels first,
  then the records of tracks that ended, on this camera or on other cameras that went quiet (times
  are capture times, so cameras can be compared). Frames and records also go through `alerts`.
- `.flush() -> list[PersonRecord]`: end every track of every camera (shutdown).
- `.close()`: flush, then stop the alert webhooks (bounded wait).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shared.alerts import AlertDispatcher
from shared.people import PeopleTracker
from shared.schemas import FrameResult, PersonRecord


class LivePeople:
    """Tracks the people of every camera whose frame results pass through it."""

    def __init__(self, fps_by_camera: Mapping[str, float] | None = None, default_fps: float = 10.0,
                 alerts: AlertDispatcher | None = None, **tracker_options: Any) -> None:
        self.fps_by_camera, self.default_fps = dict(fps_by_camera or {}), default_fps
        self.alerts = alerts
        self.tracker_options = tracker_options
        self.trackers: dict[str, PeopleTracker] = {}

    def process(self, result: FrameResult) -> list[FrameResult | PersonRecord]:
        """Track one camera frame; return it (with track ids) followed by any ended person records."""
        camera = result.camera or result.source
        t = result.captured_at if result.captured_at is not None else time.time()
        tracker = self.trackers.get(camera)
        if tracker is None:
            fps = self.fps_by_camera.get(camera, self.default_fps)
            tracker = self.trackers[camera] = PeopleTracker(camera, fps, **self.tracker_options)
        tracked, ended = tracker.update(result, t)
        for other in self.trackers.values():
            if other is not tracker:
                ended += other.expire(t)
        if self.alerts is not None:
            self.alerts.on_frame(tracked)
            for record in ended:
                self.alerts.on_person(record)
        return [tracked, *ended]

    def flush(self) -> list[PersonRecord]:
        """End every track of every camera."""
        ended = [record for tracker in self.trackers.values() for record in tracker.flush()]
        if self.alerts is not None:
            for record in ended:
                self.alerts.on_person(record)
        return ended

    def close(self, timeout_s: float = 5.0) -> list[PersonRecord]:
        """Flush every track, then deliver queued alerts for up to `timeout_s`; returns the flushed records."""
        ended = self.flush()
        if self.alerts is not None:
            self.alerts.close(timeout_s)
        return ended
