"""The pipeline of the promoted models, switched to a new version as soon as one is promoted.

One implementation for every service that runs models (detector workers, the dashboard's upload API):
a promoted version that cannot be loaded (corrupt, incomplete) is logged in one line and the running
version is kept, so a broken promote never stops detection or uploads.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from shared.model_store import ModelError, ModelStore, ModelWatcher
from shared.pipeline import Pipeline, load_pipeline

log = logging.getLogger(__name__)
KINDS = ("classifier", "detector")


class LivePipeline:
    """Holds the pipeline of the promoted classifier and detector; `refresh()` swaps it after a promote.

    With `lazy` the first load waits for the first use of `pipeline` (a service that must start without
    a model); otherwise it happens here. Either way a failed first load raises `ModelError`.
    """

    def __init__(self, store: ModelStore, interval: float = 2.0, lazy: bool = False,
                 **detector_options: Any) -> None:
        self.store, self.detector_options = store, detector_options
        self.watchers = [ModelWatcher(store, kind, interval) for kind in KINDS]
        self._pipeline: Pipeline | None = None
        if not lazy:
            self._pipeline = self._load()
            log.info("models loaded: %s", self._pipeline.model_version)

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline in use, loaded now when none is loaded yet (raises `ModelError`)."""
        if self._pipeline is None:
            self._pipeline = self._load()
            log.info("models loaded: %s", self._pipeline.model_version)
        return self._pipeline

    def current(self) -> Pipeline:
        """`refresh()`, then the pipeline in use."""
        self.refresh()
        return self.pipeline

    def refresh(self) -> bool:
        """Load the newly promoted versions, if any; a broken new version is logged and the old one kept."""
        now = time.monotonic()
        changes = [watcher.changed(now) for watcher in self.watchers]  # call both: each keeps its own clock
        if self._pipeline is None or not any(changes):
            return False
        try:
            pipeline = load_pipeline(self.store, **self.detector_options)
        except ModelError as exc:
            log.error("new model version not loaded, keeping %s: %s", self._pipeline.model_version, exc)
            return False
        if pipeline.model_version == self._pipeline.model_version:
            return False
        log.info("switched models: %s -> %s", self._pipeline.model_version, pipeline.model_version)
        self._pipeline = pipeline
        return True

    def _load(self) -> Pipeline:
        for watcher in self.watchers:
            watcher.sync()
        return load_pipeline(self.store, **self.detector_options)  # raises ModelError
