"""Review-queue fixtures: a flushed Redis database and small face crops."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import redis

from tests.conftest import flushed_redis

REVIEW_DB = 13


@pytest.fixture()
def review_redis() -> Iterator[redis.Redis]:
    """Database 13 of the test Redis, flushed."""
    yield from flushed_redis(REVIEW_DB)


def crop_b64(value: int) -> str:
    """A 32x32 grey JPEG (base64) whose brightness tells crops apart."""
    ok, data = cv2.imencode(".jpg", np.full((32, 32, 3), value, np.uint8))
    assert ok
    return base64.b64encode(data.tobytes()).decode()
