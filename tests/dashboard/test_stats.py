"""Bucket arithmetic and window sums (pure functions, no Redis)."""

from __future__ import annotations

import pytest

from services.dashboard import stats
from shared.schemas import PersonRecord
from tests.dashboard.conftest import frame_result


def test_window_names_and_aliases() -> None:
    assert stats.window_name("hour") == "1h"
    assert stats.window_name(" 1D ") == "1d"
    assert stats.window_name("60s") == "1m"
    with pytest.raises(stats.WindowError, match="unknown window 'week'"):
        stats.window_name("week")


def test_window_keys_cover_the_newest_buckets() -> None:
    now = 1_000_000_123.4
    minute = stats.window_keys("cam", "1m", now)
    assert [start for start, _ in minute] == [1_000_000_070, 1_000_000_080, 1_000_000_090, 1_000_000_100,
                                              1_000_000_110, 1_000_000_120]
    assert minute[-1][1] == "maskwatch:stats:cam:s10:1000000120"
    day = stats.window_keys("cam", "1d", now)
    assert len(day) == 24 and day[-1][0] == 999_997_200 and day[0][0] == 999_997_200 - 23 * 3600


def test_increments_count_faces_per_label_and_prefer_track_labels() -> None:
    result = frame_result("cam", 1, ["with_mask", "without_mask", "without_mask"])
    result.faces[2].track_label = "mask_incorrect"
    assert stats.result_increments(result) == {"frames": 1, "faces:with_mask": 1, "faces:without_mask": 1,
                                               "faces:mask_incorrect": 1}
    person = PersonRecord(camera="cam", track_id=3, label="without_mask", first_seen=1.0, last_seen=4.0,
                          frames=12, best_box=[0, 0, 10, 10])
    assert stats.result_increments(person) == {"people:without_mask": 1}
    assert stats.event_time(person, 99.0) == 1.0


@pytest.mark.parametrize(("latency", "bucket"), [(0.01, "0.025"), (0.3, "0.5"), (31.0, "+Inf")])
def test_latency_lands_in_the_right_bucket(latency: float, bucket: str) -> None:
    result = frame_result("cam", 1, [], captured_at=100.0, latency=latency)
    inc = stats.latency_increments(result)
    assert inc[f"latency:{bucket}"] == 1 and inc["latency_count"] == 1
    assert inc["latency_sum"] == pytest.approx(latency)


def test_summarize_sums_buckets_and_computes_compliance() -> None:
    buckets = [
        (0, {b"frames": b"4", b"faces:with_mask": b"3", b"faces:without_mask": b"1"}),
        (10, {}),
        (20, {"frames": "2", "faces:with_mask": "1", "faces:mask_incorrect": "3"}),
    ]
    summary = stats.summarize("1m", buckets)
    assert summary.frames == 6
    assert summary.faces == {"with_mask": 4, "without_mask": 1, "mask_incorrect": 3}
    assert summary.compliance == pytest.approx(0.5)
    assert [point["compliance"] for point in summary.series] == [0.75, None, 0.25]


def test_people_are_counted_beside_faces() -> None:
    summary = stats.summarize("1h", [(0, {"faces:with_mask": "10", "faces:without_mask": "10",
                                          "people:without_mask": "1", "people:with_mask": "3"})])
    assert summary.people == {"with_mask": 3, "without_mask": 1, "mask_incorrect": 0}
    assert summary.compliance == pytest.approx(0.5)  # over faces, so it does not jump when tracks end
    assert stats.summarize("1h", []).compliance is None

