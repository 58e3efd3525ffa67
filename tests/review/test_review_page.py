"""The review API behind the API key, and the Review page in headless Chromium (keyboard and buttons)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.review.queue import ReviewItem, ReviewQueue
from tests.conftest import TEST_REDIS_PORT
from tests.dashboard.conftest import (
    Dashboard,
    browser,  # noqa: F401  (the shared headless Chromium fixture)
    start_dashboard,
    stop_process,
)
from tests.review.conftest import REVIEW_DB, crop_b64

KEY = "review-key-123"
URL = f"redis://127.0.0.1:{TEST_REDIS_PORT}/{REVIEW_DB}"


@pytest.fixture()
def seeded(review_redis: redis.Redis) -> ReviewQueue:
    queue = ReviewQueue(review_redis)
    now = time.time()
    for n, label in enumerate(["with_mask", "without_mask", "mask_incorrect"]):
        queue.add(ReviewItem(id=f"item{n}", source="door", queued_at=now + n, track_id=n, model_version="v1",
                             model_label=label, confidence=0.55,
                             probs={label: 0.55, "not_face": 0.05, **{k: 0.2 for k in ["a", "b"]}},
                             reasons=["low_confidence"], crop=crop_b64(40 * n + 20)))
    return queue


@pytest.fixture(scope="module")
def keyed(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    dash = start_dashboard(tiny_store.root, URL, tmp_path_factory.mktemp("review") / "dashboard.log",
                           "--api-key", KEY)
    yield dash
    stop_process(dash.process)


def test_review_api_lists_labels_and_needs_the_key(keyed: Dashboard, seeded: ReviewQueue) -> None:
    with keyed.client() as http:
        assert http.get("/api/v1/review").status_code == 401
        assert http.post("/api/v1/review/item0", json={"label": "with_mask"}).status_code == 401
        http.headers["X-API-Key"] = KEY
        body = http.get("/api/v1/review").json()
        assert body["counts"] == {"queued": 3, "labelled": 0}
        assert [i["id"] for i in body["items"]] == ["item0", "item1", "item2"]
        assert body["labels"] == ["with_mask", "without_mask", "mask_incorrect", "not_face"]
        assert body["items"][0]["crop"] == crop_b64(20) and body["items"][0]["probs"]["with_mask"] == 0.55
        assert http.post("/api/v1/review/item0", json={"label": "maybe"}).status_code == 422
        assert http.post("/api/v1/review/item0", json={}).status_code == 422
        assert http.post("/api/v1/review/nope", json={"label": "with_mask"}).status_code == 404
        done = http.post("/api/v1/review/item1", json={"label": "mask_incorrect"})
        assert done.status_code == 200 and done.json()["label"] == "mask_incorrect"
        assert [i["id"] for i in http.get("/api/v1/review").json()["items"]] == ["item0", "item2"]
        assert [i["id"] for i in http.get("/api/v1/review?labelled=true").json()["items"]] == ["item1"]
        assert http.post("/api/v1/review/item1", json={"label": None}).json()["label"] is None
    assert seeded.counts() == {"queued": 3, "labelled": 0}


def _shown(page) -> str:
    return page.locator("#card").get_attribute("data-id")


def test_review_page_labels_with_keys_and_buttons(keyed: Dashboard, seeded: ReviewQueue, browser,  # noqa: F811
                                                  tmp_path: Path) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{keyed.url}/review?key={KEY}")
    page.wait_for_function("() => document.getElementById('card').dataset.id === 'item0'")
    assert page.locator("#model-label").text_content() == "with_mask"
    assert page.locator("#crop").get_attribute("src").startswith("data:image/jpeg;base64,")
    assert page.locator("#probs tr").first.text_content() == "with_mask55%"
    page.keyboard.press("3")  # item0 -> mask_incorrect
    page.wait_for_function("() => document.getElementById('card').dataset.id === 'item1'")
    page.keyboard.press("s")  # skip item1
    assert _shown(page) == "item2"
    page.keyboard.press("u")  # undo the skip: item1 again
    assert _shown(page) == "item1"
    page.keyboard.press("2")  # item1 -> without_mask
    page.wait_for_function("() => document.getElementById('card').dataset.id === 'item2'")
    page.keyboard.press("u")  # undo that label: item1 is back, unlabelled
    page.wait_for_function("() => document.getElementById('card').dataset.id === 'item1'")
    assert seeded.get("item1").label is None
    page.get_by_role("button", name="4 not a face").click()
    page.wait_for_function("() => document.getElementById('card').dataset.id === 'item2'")
    page.keyboard.press("1")
    page.wait_for_selector("#empty:not([hidden])")
    page.screenshot(path=str(tmp_path / "review.png"))
    assert {i.id: i.label for i in seeded.items(labelled=True)} == \
        {"item0": "mask_incorrect", "item1": "not_face", "item2": "with_mask"}
    assert seeded.counts()["queued"] == 0 and errors == []
    page.close()
