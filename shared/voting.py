"""The label of a track: a confidence-weighted vote over its frames, with hysteresis.

Public API:
- `LabelVote(switch_margin=1.5)`: each `add(label, confidence)` adds `confidence` to that label's
  evidence and returns the track label. The first frame sets the label; afterwards it changes only
  when another label's evidence exceeds the current one's by `switch_margin` (in units of
  confidence, so 1.5 is about two confident frames more), so a single flickering frame never flips it.
- `LabelVote.label`, `.evidence`, `.frames`, `.support(label)`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class LabelVote:
    """Running vote of one track."""

    switch_margin: float = 1.5
    label: str | None = None
    frames: int = 0
    evidence: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def __post_init__(self) -> None:
        if self.switch_margin < 0:
            raise ValueError(f"switch_margin must be >= 0, got {self.switch_margin}")

    def add(self, label: str, confidence: float) -> str:
        """Count one frame's label with weight `confidence`; return the (possibly new) track label."""
        self.frames += 1
        self.evidence[label] += max(0.0, float(confidence))
        if self.label is None:
            self.label = label
        else:
            leader = max(self.evidence, key=self.evidence.__getitem__)
            if self.evidence[leader] - self.evidence[self.label] > self.switch_margin:
                self.label = leader
        return self.label

    def support(self, label: str) -> float:
        """Evidence collected for `label` so far."""
        return self.evidence.get(label, 0.0)
