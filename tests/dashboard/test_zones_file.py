"""Saving one camera's zones and lines into the config file: the rest of the file stays byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.dashboard.zones_file import ZonesFileError, file_version, read_zones, replace_zones, save_zones
from shared.config import load_config

CONFIG = """\
# door cameras of the shop
redis_url: redis://127.0.0.1:6379/0   # local Redis

cameras:
  - id: door-a                 # the front door
    url: rtsp://user:pass@door-a/stream1
    fps: 10
    zones:
      - name: old
        points: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
  - id: "lobby"
    url: 'rtsp://lobby/stream'   # quoted on purpose
    enabled: false

dashboard:
  host: 127.0.0.1
  port: 8000
"""
ZONES = [{"name": "inside", "points": [[0.1, 0.4], [0.9, 0.4], [0.9, 1.0], [0.1, 1.0]]},
         {"name": "poster", "points": [[0.7, 0.05], [0.95, 0.05], [0.95, 0.35], [0.7, 0.35]], "ignore": True}]
LINES = [{"name": "door", "points": [[0.05, 0.6], [0.95, 0.6]], "in": "down"}]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG)
    os.chmod(path, 0o640)
    return path


def _without_geometry(text: str) -> list[str]:
    """The file's lines outside door-a's zones: and lines: blocks."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("    zones:") or line.startswith("    lines:"):
            skipping = True
            continue
        if skipping and line.startswith("      "):
            continue
        skipping = False
        out.append(line)
    return out


def test_save_replaces_only_that_cameras_zones_and_lines(config: Path) -> None:
    before = read_zones(config, "door-a")
    saved = save_zones(config, "door-a", ZONES, LINES, version=before.version)
    text = config.read_text()
    assert _without_geometry(text) == _without_geometry(CONFIG)  # comments, quotes, order, other cameras kept
    assert "points: [[0.1, 0.4], [0.9, 0.4], [0.9, 1.0], [0.1, 1.0]]" in text  # points stay one readable line
    loaded = load_config(config)
    door = next(cam for cam in loaded.cameras if cam.id == "door-a")
    assert [z.name for z in door.zones] == ["inside", "poster"] and [z.ignore for z in door.zones] == [False, True]
    assert [tuple(map(tuple, line.points)) for line in door.lines] == [((0.05, 0.6), (0.95, 0.6))]
    assert saved.zones[1]["ignore"] is True and saved.lines[0]["in"] == "down"
    assert saved.version == file_version(text) != before.version
    assert config.stat().st_mode & 0o777 == 0o640  # the file keeps its permissions
    assert [p.name for p in config.parent.iterdir()] == ["cameras.yaml"]  # no temporary file left behind


def test_empty_lists_remove_the_keys(config: Path) -> None:
    save_zones(config, "door-a", [], [])
    assert "zones:" not in config.read_text()
    assert _without_geometry(config.read_text()) == _without_geometry(CONFIG)


def test_flat_sequence_style_is_kept(tmp_path: Path) -> None:
    text = "cameras:\n- id: a\n  url: rtsp://a/1\n- id: b\n  url: rtsp://b/1\n"
    out = replace_zones(text, "b", [], LINES)
    assert out == text + "  lines:\n  - name: door\n    points: [[0.05, 0.6], [0.95, 0.6]]\n    in: down\n"


@pytest.mark.parametrize(("zones", "lines", "status", "words"), [
    ([{"name": "bad", "points": [[0.1, 0.1], [0.2, 0.2]]}], [], 422, "door-a"),      # 2 points
    ([{"name": "far", "points": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]}], [], 422, "door-a"),  # outside 0..1
    ([], [{"name": "door", "points": [[0.1, 0.5], [0.9, 0.5]], "in": "sideways"}], 422, "door-a"),
    ([], [{"name": "door", "points": [[0.1, 0.5], [0.9, 0.5]], "in": "down", "colour": "red"}], 422, "door-a"),
    ([{"name": "huge", "points": [[0.1, 0.1]] * 10_000}], [], 422, "huge"),  # refused by the model's limits
    ([{"name": "a", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}] * 2, [], 422, "door-a"),  # duplicate names
])
def test_bad_geometry_is_refused_and_the_file_is_untouched(config: Path, zones, lines, status, words) -> None:
    with pytest.raises(ZonesFileError) as caught:
        save_zones(config, "door-a", zones, lines)
    assert caught.value.status == status and words in str(caught.value) and "\n" not in str(caught.value)
    assert config.read_text() == CONFIG


def test_names_yaml_1_1_reads_otherwise_are_saved_as_strings(config: Path) -> None:
    zones = [{"name": name, "points": ZONES[0]["points"]} for name in ("on", "No", "1_0", "y")]
    lines = [{"name": "yes", "points": LINES[0]["points"], "in": "on"}]
    saved = save_zones(config, "door-a", zones, lines)
    assert [z["name"] for z in saved.zones] == ["on", "No", "1_0", "y"]
    assert saved.lines == [{"name": "yes", "points": [[0.05, 0.6], [0.95, 0.6]], "in": "on"}]
    assert read_zones(config, "door-a").zones == saved.zones and "name: 'on'" in config.read_text()


def test_unknown_camera_stale_version_and_broken_file(config: Path) -> None:
    with pytest.raises(ZonesFileError) as caught:
        save_zones(config, "garage", ZONES, LINES)
    assert caught.value.status == 404
    with pytest.raises(ZonesFileError) as caught:
        save_zones(config, "door-a", ZONES, LINES, version="0" * 16)
    assert caught.value.status == 409 and "changed since" in str(caught.value)
    config.write_text("cameras: [\n")
    with pytest.raises(ZonesFileError) as caught:
        save_zones(config, "door-a", ZONES, LINES)
    assert caught.value.status == 409 and "YAML" in str(caught.value)
    assert config.read_text() == "cameras: [\n"
