"""Camera ownership between tracker replicas: one lease key per camera, with expiry.

Public API:
- `Leases(client, name, ttl_s)`: `.acquire(camera) -> bool` (free, or already ours), `.renew(cameras) -> set` (the
  cameras still held; PEXPIRE only where the key still names this tracker), `.release(camera)` (delete
  only if still ours), `.owner(camera)`, `.watch_owned(pipe, camera) -> bool` (WATCH the key on a
  pipeline and check it is still ours: queued writes then commit only while the lease holds).

A tracker that dies stops renewing; its leases expire after `ttl_s` and another replica acquires them.
The owning tracker writes a camera's results only in a transaction that WATCHes its lease, so once
another replica has taken the lease (SET changes the key), a slow former owner can no longer publish.
"""

from __future__ import annotations

import redis

from shared import keys
from shared.streams import decode_str

_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_ACQUIRE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end return 0"
)
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Leases:
    """The leases of one tracker replica."""

    def __init__(self, client: redis.Redis, name: str, ttl_s: float) -> None:
        self.client, self.name, self.ttl_ms = client, name, max(1, int(ttl_s * 1000))
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, camera: str) -> bool:
        """Take the camera if nobody holds it (or keep it if this tracker already does)."""
        return bool(self._acquire(keys=[keys.tracker_lease(camera)], args=[self.name, self.ttl_ms]))

    def renew(self, cameras: list[str]) -> set[str]:
        """Extend the leases of `cameras`; returns those still held by this tracker."""
        pipe = self.client.pipeline(transaction=False)
        for camera in cameras:
            self._renew(keys=[keys.tracker_lease(camera)], args=[self.name, self.ttl_ms], client=pipe)
        return {camera for camera, ok in zip(cameras, pipe.execute()) if ok}

    def release(self, camera: str) -> None:
        """Give the camera up (only if this tracker still holds it)."""
        self._release(keys=[keys.tracker_lease(camera)], args=[self.name])

    def owner(self, camera: str) -> str | None:
        """The tracker holding the camera, if any."""
        return decode_str(self.client.get(keys.tracker_lease(camera)))

    def watch_owned(self, pipe: redis.client.Pipeline, camera: str) -> bool:
        """WATCH the lease on `pipe` (then call `pipe.multi()`); False when it is no longer ours."""
        key = keys.tracker_lease(camera)
        pipe.watch(key)
        return decode_str(pipe.get(key)) == self.name
