"""Overlapped stages and cross-frame batches give the same faces as the plain pipeline, in order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from shared.classifier import BatchRunner
from shared.model_store import ModelStore
from shared.overlap import OverlappedPipeline
from shared.pipeline import load_pipeline


@pytest.mark.parametrize("inline", [False, True])
def test_overlap_matches_serial_and_keeps_order(tiny_store: ModelStore, scene_photos, inline: bool) -> None:
    pipeline = load_pipeline(tiny_store)
    paths = [str(p) for p in scene_photos[:6]]
    serial = [pipeline.process(cv2.imread(p)) for p in paths]
    items = [*paths[:3], "missing.jpg", *paths[3:]]

    def load(path: str) -> np.ndarray:
        image = cv2.imread(path)
        if image is None:
            raise ValueError(f"cannot read {path}")
        return image

    with OverlappedPipeline(pipeline, ahead=2, max_batch=3, inline=inline) as overlapped:
        done = list(overlapped.run(items, load))
    assert [d.item for d in done] == items
    failed = done[3]
    assert failed.faces is None and failed.image is None and "missing.jpg" in str(failed.error)
    assert [d.faces for d in done if d.error is None] == serial
    assert sum(len(f) for f in serial) > 0


def test_submitted_batches_keep_the_newest_in_detection_and_stay_in_order(tiny_store: ModelStore,
                                                                          scene_photos) -> None:
    pipeline = load_pipeline(tiny_store)
    paths = [str(p) for p in scene_photos[:5]]
    serial = [pipeline.process(cv2.imread(p)) for p in paths]
    with OverlappedPipeline(pipeline, max_batch=2) as overlapped:
        overlapped.submit(paths[:3], cv2.imread)
        first = list(overlapped.collect(keep=1))
        assert [d.item for d in first] == paths[:2] and overlapped.queued == 1  # the newest is kept
        assert list(overlapped.collect(keep=1)) == [] and overlapped.queued == 1
        overlapped.submit(paths[3:], cv2.imread)
        rest = list(overlapped.collect())
        assert [d.item for d in rest] == paths[2:] and overlapped.queued == 0
    assert [d.faces for d in first + rest] == serial


def test_frames_classified_in_one_batch_match_one_by_one(tiny_store: ModelStore, scene_photos) -> None:
    pipeline = load_pipeline(tiny_store)
    images = [cv2.imread(str(p)) for p in scene_photos[:4]]
    one_by_one = [pipeline.process(image) for image in images]
    calls = pipeline.times.calls
    assert pipeline.process_many(images) == one_by_one
    assert pipeline.times.calls == calls + len(images)


def test_batch_runner_keeps_one_interpreter_per_size_and_chunks_larger_batches(tiny_store: ModelStore) -> None:
    classifier = load_pipeline(tiny_store).classifier
    runner: BatchRunner = classifier.runners[0]
    runner._keep = 2  # noqa: SLF001 - a small cache makes the eviction visible
    rng = np.random.default_rng(0)
    size = classifier.input_size
    batch = rng.random((5, size, size, 3), np.float32)
    expected = runner(batch[:1])
    for n in (3, 5, 2, 3, 1):
        out = runner(batch[:n])
        assert out.shape[0] == n
        np.testing.assert_allclose(out[:1], expected, atol=1e-5)
    assert list(runner._by_size) == [2, 1]  # noqa: SLF001 - 5 ran as 2 + 2 + 1, 3 as 2 + 1
    np.testing.assert_allclose(runner(batch), np.concatenate([runner(row[None]) for row in batch]), atol=1e-5)
