"""`maskwatch detect --config --camera`: a camera's zones and lines applied to a file, crossings in --json, --stats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from tests.core.test_detect_command import maskwatch
from tests.tracking.test_detect_people import walkers_clip  # noqa: F401 - the shared clip fixture

MIDDLE = {"name": "middle", "points": [[0.5, 0.02], [0.5, 0.98]], "in": "right"}


def cameras(path: Path, **door_a) -> Path:
    path.write_text(yaml.safe_dump({"cameras": [{"id": "door-a", "url": "rtsp://cam/1", **door_a},
                                                {"id": "hall", "url": "rtsp://cam/2"}]}))
    return path


def test_lines_of_the_camera_count_entries_and_exits_of_a_file(tiny_store, walkers_clip, tmp_path) -> None:  # noqa: F811
    config = cameras(tmp_path / "cams.yaml", lines=[MIDDLE])
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--config", str(config), "--camera", "door-a",
                    "--json", str(tmp_path / "o.jsonl"), "--stats", str(tmp_path / "s.csv"), "--stats-period", "1",
                    "--no-progress")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    people = {p["track_id"]: p for p in lines if p["type"] == "person"}
    crossings = [c for c in lines if c["type"] == "crossing"]
    # the masked face walks right (an entry), the bare face walks left (an exit), each once
    assert sorted(c["direction"] for c in crossings) == ["in", "out"] and len(people) == 2
    for crossing in crossings:
        assert crossing["line"] == "middle" and crossing["label"] == people[crossing["track_id"]]["label"]
        assert lines.index(crossing) > lines.index(people[crossing["track_id"]])
    entry = next(c for c in crossings if c["direction"] == "in")
    assert entry["time"] < 1.5  # about frame 32 of 25 fps (centre 65 px + 8 px a frame reaches 320 px)
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert sum(int(r["entries"]) for r in rows) == 1 and sum(int(r["exits"]) for r in rows) == 1
    entry_row = next(r for r in rows if int(r["entries"]))
    assert float(entry_row["period_start"]) <= entry["time"] < float(entry_row["period_end"])
    assert int(entry_row[f"entries_{entry['label']}"]) == 1
    assert "entries: 1" in out.stderr and "exits: 1" in out.stderr


def test_an_ignore_zone_hides_a_face_from_a_file(tiny_store, walkers_clip, tmp_path) -> None:  # noqa: F811
    lower = {"name": "floor", "points": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "ignore": True}  # the bare face's way
    config = cameras(tmp_path / "cams.yaml", zones=[lower])
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--config", str(config), "--camera", "door-a",
                    "--json", "-", "--no-progress")
    assert out.returncode == 0, out.stderr
    people = [json.loads(line) for line in out.stdout.splitlines() if '"type":"person"' in line]
    assert len(people) == 1 and people[0]["first_seen"] == 0  # only the masked face, up in the frame


def test_bad_config_or_camera_is_one_error_line(tiny_store, walkers_clip, tmp_path) -> None:  # noqa: F811
    bad = cameras(tmp_path / "bad.yaml", lines=[{**MIDDLE, "points": [[0.5, 0.5], [0.5, 0.5]]}])
    for args, message in [
        (["--config", str(bad), "--camera", "door-a"], "lines[0] (middle): points: line has zero length"),
        (["--config", str(bad), "--camera", "nope"], "no camera 'nope' (cameras: door-a, hall)"),
        (["--config", str(bad)], "name the camera with --camera (one of: door-a, hall)"),
        (["--camera", "door-a"], "--camera needs --config"),
    ]:
        out = maskwatch(tiny_store, "detect", str(walkers_clip), *args, "--no-progress")
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
