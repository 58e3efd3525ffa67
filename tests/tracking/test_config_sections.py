"""The `alerts:` and `privacy:` sections of the config file."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, parse_config


def test_sections_parse_with_defaults() -> None:
    config = parse_config("""
cameras: []
alerts:
  webhooks:
    - url: http://127.0.0.1:9000/all
    - url: https://hooks.example.org/door
      cameras: [door]
  unmasked_share: 0.3
privacy:
  blur_faces: true
""")
    assert [h.url for h in config.alerts.webhooks] == ["http://127.0.0.1:9000/all", "https://hooks.example.org/door"]
    assert config.alerts.webhooks[1].wants("door") and not config.alerts.webhooks[1].wants("lobby")
    assert config.alerts.unmasked_share == 0.3 and config.alerts.confirm_frames == 5
    assert config.privacy.blur_faces is True
    plain = parse_config("cameras: []")
    assert plain.alerts.webhooks == [] and plain.privacy.blur_faces is False


@pytest.mark.parametrize("text, where", [
    ("alerts:\n  webhooks:\n    - url: not-a-url\n", "alerts.webhooks.0.url"),
    ("alerts:\n  confirm_frames: 0\n", "alerts.confirm_frames"),
    ("alerts:\n  webhook: http://x\n", "alerts.webhook: unknown option"),
    ("privacy:\n  blur_faces: maybe\n", "privacy.blur_faces"),
])
def test_bad_sections_are_one_line_errors(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, name="cams.yaml")
    message = str(err.value)
    assert message.startswith("cams.yaml: ") and where in message and "\n" not in message
