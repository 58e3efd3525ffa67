"""The review queue in Redis: unlabelled items ordered by age, labelled items kept until they are exported.

Keys: `maskwatch:review:items` (hash id -> item JSON), `maskwatch:review:queued` and
`maskwatch:review:labelled` (sorted sets id -> queue time). Adding an item trims the queue in the same
atomic script: unlabelled items older than `max_age_s` go, then the oldest beyond `max_items`. Labelled
items are human work and are never trimmed; `remove` drops them once exported. Redis with its append-only
file (docker-compose.yml) keeps the queue across restarts, and the tracker adds items in the transaction
that publishes the person record, so a tracker takeover neither loses nor doubles one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence

import redis
from pydantic import BaseModel, Field, ValidationError

from shared import keys
from shared.review.config import ReviewConfig
from shared.schemas import MASK_LABELS, NOT_FACE

ITEMS, QUEUED, LABELLED = keys.REVIEW_ITEMS, keys.REVIEW_QUEUED, keys.REVIEW_LABELLED
REVIEW_LABELS: tuple[str, ...] = (*MASK_LABELS, NOT_FACE)

# KEYS: items, queued; ARGV: id, json, queued_at, cutoff, max_items (0 = no size limit). Returns ids dropped.
_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local dropped = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
local over = redis.call('ZCARD', KEYS[2]) - #dropped - tonumber(ARGV[5])
if tonumber(ARGV[5]) > 0 and over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], #dropped, #dropped + over - 1)) do table.insert(dropped, id) end
end
for _, id in ipairs(dropped) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[1], id)
end
return dropped
"""


class ReviewItem(BaseModel):
    """One face queued for review; `label` is the reviewer's, `model_label` the model's."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    source: str  # a camera id, or `import:<VOC folder name>`
    queued_at: float = Field(default_factory=time.time)
    seen_at: float | None = None  # the frame time of the crop (cameras)
    track_id: int | None = None
    photo: str | None = None  # imported faces: the photo file and its annotated box and label
    box: list[int] | None = None
    annotated: str | None = None
    model_version: str | None = None
    model_label: str
    confidence: float
    probs: dict[str, float]
    reasons: list[str]
    crop: str  # base64 JPEG, long side <= 128 px (blurred when the camera's privacy blur is on)
    label: str | None = None
    labelled_at: float | None = None


class ReviewError(ValueError):
    """An unknown item or label."""


class ReviewQueue:
    """The queue on one Redis database (synchronous client)."""

    def __init__(self, client: redis.Redis, config: ReviewConfig | None = None) -> None:
        self.client, self.config = client, config or ReviewConfig()
        self._add = client.register_script(_ADD)

    def add(self, item: ReviewItem, pipe: redis.client.Pipeline | None = None, bounded: bool = True) -> None:
        """Queue an item (on `pipe` when given: exactly once with the caller's transaction), trimming the queue.

        `bounded=False` (an import) applies the age limit only.
        """
        cutoff = time.time() - self.config.max_age_s
        args = [item.id, item.model_dump_json(), item.queued_at, cutoff, self.config.max_items if bounded else 0]
        if pipe is None:
            self._add(keys=[ITEMS, QUEUED], args=args)
        else:
            pipe.eval(_ADD, 2, ITEMS, QUEUED, *args)

    def items(self, labelled: bool = False, limit: int = 100) -> list[ReviewItem]:
        """Unlabelled items, oldest first (or the labelled ones)."""
        ids = self.client.zrange(LABELLED if labelled else QUEUED, 0, limit - 1)
        return self._load(ids)

    def counts(self) -> dict[str, int]:
        """Unlabelled and labelled items."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(QUEUED)
        pipe.zcard(LABELLED)
        queued, labelled = pipe.execute()
        return {"queued": int(queued), "labelled": int(labelled)}

    def get(self, item_id: str) -> ReviewItem:
        """One item; raises ReviewError when it is unknown."""
        found = self._load([item_id])
        if not found:
            raise ReviewError(f"no review item {item_id!r}")
        return found[0]

    def label(self, item_id: str, label: str | None) -> ReviewItem:
        """Set the reviewer's label (None: undo, the item is queued again); raises ReviewError."""
        if label is not None and label not in REVIEW_LABELS:
            raise ReviewError(f"label must be one of {', '.join(REVIEW_LABELS)} or null, not {label!r}")
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(ITEMS)
                    item = self.get(item_id)
                    item = item.model_copy(update={"label": label, "labelled_at": time.time() if label else None})
                    pipe.multi()
                    pipe.hset(ITEMS, item.id, item.model_dump_json())
                    pipe.zrem(QUEUED if label else LABELLED, item.id)
                    pipe.zadd(LABELLED if label else QUEUED, {item.id: item.queued_at})
                    pipe.execute()
                    return item
                except redis.WatchError:
                    continue

    def remove(self, item_ids: Iterable[str]) -> int:
        """Drop items (exported ones); returns how many were there."""
        ids = list(item_ids)
        if not ids:
            return 0
        pipe = self.client.pipeline()
        pipe.hdel(ITEMS, *ids)
        pipe.zrem(QUEUED, *ids)
        pipe.zrem(LABELLED, *ids)
        return int(pipe.execute()[0])

    def _load(self, ids: Sequence[bytes | str]) -> list[ReviewItem]:
        if not ids:
            return []
        items = []
        for raw in self.client.hmget(ITEMS, list(ids)):
            if raw is None:
                continue
            try:
                items.append(ReviewItem.model_validate_json(raw))
            except ValidationError:
                continue  # a hand-edited or foreign entry: not ours to show
        return items
