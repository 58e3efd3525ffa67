"""The bookkeeping both detector trainers share: steps, progress lines, the loss history, the time limit and the
run summary (training.json)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class RunLog:
    """One training run's progress. `parts`: names of the loss parts each step reports after the loss; `count`:
    the name of the per-batch count reported last (positive anchors, foreground priors)."""

    total: int
    steps_per_epoch: int
    parts: tuple[str, ...]
    count: str
    log_every: int
    max_minutes: float = 0.0
    start: float = field(default_factory=time.monotonic)
    done: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    _running: list[tuple[float, ...]] = field(default_factory=list)

    def step(self, loss: float, *figures: float) -> bool:
        """Count a step (its loss, then one figure per part and the count); True when it wrote a progress line.

        Raises RuntimeError when the loss is not finite (training diverged)."""
        self.done += 1
        if not math.isfinite(loss):
            raise RuntimeError(f"training diverged at step {self.done} (loss {loss})")
        self._running.append((loss, *figures))
        if self.done % self.log_every and self.done != self.total:
            return False
        mean = np.mean(self._running, axis=0)
        self._running = []
        elapsed = self.elapsed()
        parts = " ".join(f"{name} {value:.3f}" for name, value in zip(self.parts, mean[1:]))
        log.info("epoch %.2f step %d/%d loss %.3f (%s, %.0f %s/batch) %.2f s/step, %.1f min",
                 self.done / self.steps_per_epoch, self.done, self.total, mean[0], parts, mean[-1], self.count,
                 elapsed / self.done, elapsed / 60)
        self.history.append({"step": self.done, "loss": float(mean[0]),
                             **{name: float(value) for name, value in zip(self.parts, mean[1:])}})
        return True

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.start

    def time_up(self) -> bool:
        """Whether the time limit (max_minutes; 0: none) is reached; then the run stops early."""
        if self.max_minutes and self.elapsed() > self.max_minutes * 60:
            log.info("time limit of %.1f min reached after %d of %d steps", self.max_minutes, self.done, self.total)
            self.stopped_early = True
        return self.stopped_early

    def summary(self, config: Any, photos: int) -> dict:
        """The run summary: its config (a dataclass), steps, epochs, photos, minutes and the loss history."""
        return {"config": asdict(config), "steps": self.done, "epochs_done": round(self.done / self.steps_per_epoch, 2),
                "train_photos": photos, "minutes": round(self.elapsed() / 60, 1), "stopped_early": self.stopped_early,
                "history": self.history}
