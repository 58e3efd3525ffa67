"""The pipeline a detector worker runs, switched to a new model version as soon as one is promoted."""

from __future__ import annotations

import logging
import time
from typing import Any

from shared.model_store import ModelError, ModelStore, ModelWatcher
from shared.pipeline import Pipeline, load_pipeline

log = logging.getLogger(__name__)


class LivePipeline:
    """Holds the pipeline of the promoted classifier and detector; `refresh()` swaps it after a promote."""

    def __init__(self, store: ModelStore, interval: float = 2.0, **detector_options: Any) -> None:
        self.store, self.detector_options = store, detector_options
        self.watchers = [ModelWatcher(store, kind, interval) for kind in ("classifier", "detector")]
        for watcher in self.watchers:
            watcher.changed(time.monotonic())
        self.pipeline: Pipeline = load_pipeline(store, **detector_options)  # raises ModelError
        log.info("models loaded: %s", self.pipeline.model_version)

    def refresh(self) -> bool:
        """Load the newly promoted versions, if any; a broken new version is logged and the old one kept."""
        now = time.monotonic()
        changes = [watcher.changed(now) for watcher in self.watchers]  # call both: each keeps its own clock
        if not any(changes):
            return False
        try:
            pipeline = load_pipeline(self.store, **self.detector_options)
        except ModelError as exc:
            log.error("new model version not loaded, keeping %s: %s", self.pipeline.model_version, exc)
            return False
        if pipeline.model_version == self.pipeline.model_version:
            return False
        log.info("switched models: %s -> %s", self.pipeline.model_version, pipeline.model_version)
        self.pipeline = pipeline
        return True
