"""Fixtures shared by every test area: the ../shared data, model stores and Redis."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_WEIGHTS = REPO.parent / "shared" / "weights"
# The Redis the tests flush databases of; another port lets several checkouts run their tests at once.
TEST_REDIS_PORT = int(os.environ.get("MASKWATCH_TEST_REDIS_PORT", "6379"))


def flushed_redis(db: int) -> Iterator[redis.Redis]:
    """A client on database `db` of the local Redis, flushed before and after; skips when Redis is absent."""
    client = redis.Redis(host="127.0.0.1", port=TEST_REDIS_PORT, db=db, socket_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis on 127.0.0.1:{TEST_REDIS_PORT}")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the ../shared data set is not beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def scene_photos(shared_data: Path) -> list[Path]:
    """The annotated ilc2021 scene photos, sorted."""
    return sorted(_need(shared_data / "scenes" / "ilc2021" / "images").glob("*.jpg"))


@pytest.fixture(scope="session")
def airport_video(shared_data: Path) -> Path:
    """The 640x360 airport crowd clip."""
    return _need(shared_data / "video" / "airport.mp4")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory):
    """A model store with the stock detector and a tiny, untrained 3-class TFLite classifier.

    For tests of plumbing, not accuracy; tests of accuracy use the shipped default model.
    """
    from shared.model_store import ModelStore
    from tests.tiny_classifier import build_tiny_classifier

    root = tmp_path_factory.mktemp("store")
    # without the back-end calibration: plumbing tests run the default runtimes, never a timed choice
    shutil.copytree(REPO / "models" / "detector", root / "detector", ignore=shutil.ignore_patterns("backends.json"))
    store = ModelStore(root)
    build_tiny_classifier(store, "tiny-test")
    store.promote("classifier", "tiny-test")
    return store


@pytest.fixture
def services(tmp_path: Path, tiny_store):
    """Launcher for `maskwatch` service processes using the tiny model store; all are killed at the end."""
    from tests.stack.helpers import Services

    env = {**os.environ, "MASKWATCH_MODELS": str(tiny_store.root), "MASKWATCH_LOG_LEVEL": "INFO",
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MASKWATCH_REDIS_URL", None)
    runner = Services(tmp_path, env)
    yield runner
    runner.close()
