"""The review API under /api/v1 and the Review page: queued faces, labelled by a person."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from services.dashboard.settings import DashboardSettings
from shared.review.queue import REVIEW_LABELS, ReviewError, ReviewItem, ReviewQueue


class ReviewLabel(BaseModel):
    """The reviewer's label for one item; null undoes an earlier label."""

    label: str | None


class ReviewList(BaseModel):
    """Queued (or labelled) items and the queue's counts."""

    labels: list[str]
    counts: dict[str, int]
    items: list[ReviewItem]


def router(settings: DashboardSettings) -> APIRouter:
    """Review routes; they need the API key when one is set (the app adds that dependency)."""
    api = APIRouter(prefix="/api/v1", tags=["review"])

    def queue(request: Request) -> ReviewQueue:
        return ReviewQueue(request.app.state.sync_redis)

    @api.get("/review", response_model=ReviewList)
    async def review_items(request: Request, limit: int = Query(50, ge=1, le=500),
                           labelled: bool = Query(False, description="the labelled items (awaiting export)")) -> dict:
        """Faces queued for review, oldest first: the crop (base64 JPEG), the model's label and probabilities."""
        q = queue(request)
        items = await anyio.to_thread.run_sync(lambda: q.items(labelled=labelled, limit=limit))
        counts = await anyio.to_thread.run_sync(q.counts)
        return {"labels": list(REVIEW_LABELS), "counts": counts, "items": items}

    @api.post("/review/{item_id}", response_model=ReviewItem, responses={404: {"description": "unknown item"},
                                                                         422: {"description": "unknown label"}})
    async def review_label(request: Request, item_id: str, body: ReviewLabel) -> ReviewItem:
        """Label one item (with_mask, without_mask, mask_incorrect or not_face); null puts it back in the queue."""
        if body.label is not None and body.label not in REVIEW_LABELS:
            raise HTTPException(422, f"label must be one of {', '.join(REVIEW_LABELS)} or null")
        q = queue(request)
        try:
            return await anyio.to_thread.run_sync(q.label, item_id, body.label)
        except ReviewError as exc:
            raise HTTPException(404, str(exc)) from None

    return api

