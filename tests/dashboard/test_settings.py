"""Dashboard settings: the camera list follows the config file."""

from __future__ import annotations

import os

from services.dashboard.settings import DashboardSettings


def test_config_cameras_follow_edits_and_survive_broken_files(tmp_path, caplog) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text("cameras:\n  - {id: door, url: rtsp://a/1}\n")
    settings = DashboardSettings(config_path=config)
    assert settings.cameras() == ("door",)
    config.write_text("cameras:\n  - {id: door, url: rtsp://a/1}\n  - {id: yard, url: '0'}\n")
    os.utime(config, (1, 1))  # a different mtime, whatever the file system's resolution
    assert settings.cameras() == ("door", "yard")
    config.write_text("cameras: [\n")
    os.utime(config, (2, 2))
    assert settings.cameras() == ("door", "yard")
    assert any("not valid YAML" in r.getMessage() for r in caplog.records)
    assert DashboardSettings().cameras() == ()
