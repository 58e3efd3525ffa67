"""cameras.yaml validation: per-entry problems, one-line errors, defaults and path resolution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import DEFAULT_REDIS_URL, ConfigError, load_config, parse_config
from tests.conftest import REPO


def test_example_config_is_valid() -> None:
    text = (REPO / "cameras.example.yaml").read_text()
    config = load_config(REPO / "cameras.example.yaml")
    assert config.problems == [] and config.cameras == []  # a fresh clone has no camera: nothing can fail
    # the commented examples are valid entries once uncommented
    block = text.split("cameras: []\n", 1)[1].split("\n\n", 1)[0]
    examples = parse_config("cameras:\n" + "\n".join(line.removeprefix("#") for line in block.splitlines()))
    assert examples.problems == []
    assert [c.id for c in examples.cameras] == ["entrance", "lobby"]
    lobby = examples.cameras[1]
    assert lobby.loop and lobby.fps == 10 and lobby.url == "/videos/lobby.mp4"


def test_bad_entries_are_reported_and_the_others_kept() -> None:
    config = parse_config("""
cameras:
  - {id: good, url: 0}
  - {id: slow, url: rtsp://h/s, fps: 0}
  - {id: "bad id!", url: x.mp4}
  - {id: typo, url: x.mp4, lop: true}
  - {id: good, url: y.mp4}
  - just a string
  - {url: z.mp4}
""")
    assert [c.id for c in config.cameras] == ["good"]
    assert config.cameras[0].url == "0"  # a webcam index given as a number
    problems = "\n".join(config.problems)
    assert len(config.problems) == 6
    assert "cameras[1] (id 'slow'): fps: Input should be greater than 0" in problems
    assert "cameras[2] (id 'bad id!'): id: must be 1-64 letters" in problems
    assert "cameras[3] (id 'typo'): lop: unknown option" in problems
    assert "cameras[4] (id 'good'): duplicate camera id 'good'" in problems
    assert "cameras[5]:" in problems
    assert "cameras[6]: id: Field required" in problems
    assert all("\n" not in p for p in config.problems)
    # ids of bad entries that are usable as ids are reported so the dashboard can show them as failed
    assert config.invalid_cameras == {"slow": config.problems[0], "typo": config.problems[2]}


@pytest.mark.parametrize("text, message", [
    ("cameras: [", "not valid YAML at line"),
    ("- a\n- b\n", "expected a mapping"),
    ("cameras: {id: x}", "'cameras' must be a list"),
    ("redis_url: http://x\ncameras: []", "redis_url: must start with redis://"),
    ("detector: {max_frame_age: -1}", "detector.max_frame_age: Input should be greater than 0"),
    ("dashboard: {port: 70000}", "dashboard.port: Input should be less than or equal to 65535"),
])
def test_unusable_config_is_one_line_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, name="cams.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("cams.yaml: ")
    assert "\n" not in str(info.value)


def test_redis_url_from_config_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASKWATCH_REDIS_URL", raising=False)
    assert parse_config("cameras: []").redis_url == DEFAULT_REDIS_URL
    monkeypatch.setenv("MASKWATCH_REDIS_URL", "redis://envhost:6379/3")
    assert parse_config("").redis_url == "redis://envhost:6379/3"
    assert parse_config("redis_url: redis://cfg:1/2").redis_url == "redis://cfg:1/2"


def test_relative_video_paths_resolve_next_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("cameras:\n - {id: a, url: videos/a.mp4}\n - {id: b, url: 'rtsp://u:p@h/s'}\n - {id: c, url: 2}\n")
    config = load_config(path)
    assert [c.url for c in config.cameras] == [str(tmp_path / "videos" / "a.mp4"), "rtsp://u:p@h/s", "2"]


def test_unknown_sections_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config("alarms: [{when: x}]\ncameras: [{id: a, url: '0'}]", name="c.yaml")
    assert [c.id for c in config.cameras] == ["a"]
    assert "c.yaml: unknown section 'alarms' ignored" in caplog.text


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read config \(No such file or directory\)"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("command", [["capture"], ["stack", "up"]])
def test_commands_refuse_a_bad_config_without_traceback(tmp_path: Path, command: list[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [\n")
    done = subprocess.run([sys.executable, "-m", "maskwatch.cli", *command, "--config", str(bad)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {bad}: not valid YAML at line 2: "
                                                "expected the node content, but found '<stream end>'"]
