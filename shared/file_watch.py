"""Noticing that a file (the camera file) was edited, by polling its inode, modification time (ns) and size.

Public API:
- `FileWatch(path, seen=True)`: `.changed() -> bool` says whether the file changed since the last call.

A file that cannot be stat'ed is not a change: an editor or `maskwatch` replacing the file atomically leaves
it missing for a moment, and the file that then appears is the change. The inode catches such a replace even
when the new file has the same size and modification time.
"""

from __future__ import annotations

import os
from pathlib import Path

Stamp = tuple[int, int, int]


def file_stamp(path: Path | str) -> Stamp | None:
    """(inode, mtime in ns, size) of a file; None when it cannot be stat'ed."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


class FileWatch:
    """Tells whether a file changed since the last look; `seen=False`: its first look counts as a change."""

    def __init__(self, path: Path | str, seen: bool = True) -> None:
        self.path = Path(path)
        self._stamp = file_stamp(self.path) if seen else None

    def changed(self) -> bool:
        """Whether the file is there and differs from the last time it was there."""
        stamp = file_stamp(self.path)
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        return True
