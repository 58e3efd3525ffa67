"""Camera ownership between replicas of a service (trackers, capture): one lease key per camera, with expiry.

Public API:
- `Leases(client, name, ttl_s, key=keys.tracker_lease)`: `.acquire(camera) -> bool` (free, or already ours),
  `.acquire_many(cameras) -> list` (one round trip), `.renew(cameras) -> set` (the cameras still held;
  PEXPIRE only where the key still names this replica), `.release(camera)` / `.release_many(cameras)` (delete
  only if still ours), `.owner(camera)`, `.watch_owned(pipe, *cameras) -> bool` (WATCH the keys on a
  pipeline and check it is still ours: queued writes then commit only while the lease holds).

A replica that dies stops renewing; its leases expire after `ttl_s` and another replica acquires them.
The owning tracker writes a camera's results only in a transaction that WATCHes its lease, so once
another replica has taken the lease (SET changes the key), a slow former owner can no longer publish.
"""

from __future__ import annotations

from collections.abc import Callable

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
    """The leases of one replica; `key(camera)` names a camera's lease key (the service's own key space)."""

    def __init__(self, client: redis.Redis, name: str, ttl_s: float,
                 key: Callable[[str], str] = keys.tracker_lease) -> None:
        self.client, self.name, self.ttl_ms = client, name, max(1, int(ttl_s * 1000))
        self.key = key
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, camera: str) -> bool:
        """Take the camera if nobody holds it (or keep it if this replica already does)."""
        return bool(self._acquire(keys=[self.key(camera)], args=[self.name, self.ttl_ms]))

    def acquire_many(self, cameras: list[str]) -> list[str]:
        """Take every free camera of `cameras` in one round trip; returns those now held by this replica."""
        pipe = self.client.pipeline(transaction=False)
        for camera in cameras:
            self._acquire(keys=[self.key(camera)], args=[self.name, self.ttl_ms], client=pipe)
        return [camera for camera, ok in zip(cameras, pipe.execute()) if ok]

    def renew(self, cameras: list[str]) -> set[str]:
        """Extend the leases of `cameras`; returns those still held by this replica."""
        pipe = self.client.pipeline(transaction=False)
        for camera in cameras:
            self._renew(keys=[self.key(camera)], args=[self.name, self.ttl_ms], client=pipe)
        return {camera for camera, ok in zip(cameras, pipe.execute()) if ok}

    def release(self, camera: str) -> None:
        """Give the camera up (only if this replica still holds it)."""
        self._release(keys=[self.key(camera)], args=[self.name])

    def release_many(self, cameras: list[str]) -> None:
        """Give up every camera of `cameras` still held by this replica, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for camera in cameras:
            self._release(keys=[self.key(camera)], args=[self.name], client=pipe)
        pipe.execute()

    def owner(self, camera: str) -> str | None:
        """The replica holding the camera, if any."""
        return decode_str(self.client.get(self.key(camera)))

    def watch_owned(self, pipe: redis.client.Pipeline, *cameras: str) -> bool:
        """WATCH the leases of `cameras` on `pipe` (then call `pipe.multi()`); False unless every one is ours."""
        lease_keys = [self.key(camera) for camera in cameras]
        pipe.watch(*lease_keys)
        return all(decode_str(owner) == self.name for owner in pipe.mget(lease_keys))
