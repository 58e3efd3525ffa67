"""Observers the tracker calls per camera (the contract is in services/tracker/__init__.py)."""

from __future__ import annotations

from typing import Any

from shared.alerts import AlertDispatcher, Event
from shared.overrides import AlertSwitch
from shared.schemas import FrameResult, LineCrossing, PersonRecord


class CameraAlerts:
    """The alert rules of one camera, on a dispatcher (and webhook sender) shared by all cameras.

    With a `switch`, a camera whose alerts a command turned off raises none (and posts no webhooks).
    """

    def __init__(self, dispatcher: AlertDispatcher, camera: str, switch: AlertSwitch | None = None) -> None:
        self.dispatcher, self.camera, self.switch = dispatcher, camera, switch

    def on_frame(self, result: FrameResult) -> list[Event]:
        """Person alerts confirmed by this frame."""
        if self.switch is not None and not self.switch.on:
            return []
        return self.dispatcher.on_frame(result)

    def on_person(self, record: PersonRecord) -> list[Event]:
        """Alerts raised by an ended track (short unmasked track, unmasked share)."""
        if self.switch is not None and not self.switch.on:
            return []
        return self.dispatcher.on_person(record)

    def on_crossing(self, crossing: LineCrossing) -> list[Event]:
        """Alerts of the rules limited to that line."""
        if self.switch is not None and not self.switch.on:
            return []
        return self.dispatcher.on_crossing(crossing)

    def snapshot(self) -> dict[str, Any]:
        """The camera's rule state, for the checkpoint."""
        return self.dispatcher.snapshot(self.camera)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpointed rule state."""
        self.dispatcher.restore(self.camera, state)
