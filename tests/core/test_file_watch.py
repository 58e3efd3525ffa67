"""FileWatch: an edit, an atomic replace or a size change is noticed; a file missing for a moment is not a change."""

from __future__ import annotations

import os
from pathlib import Path

from shared.file_watch import FileWatch


def _same_times(path: Path, like: os.stat_result) -> None:
    os.utime(path, ns=(like.st_atime_ns, like.st_mtime_ns))


def test_nothing_changed_is_no_change(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch(path)
    assert not watch.changed() and not watch.changed()


def test_a_new_mtime_or_size_is_a_change_once(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("a: 1\n")
    watch = FileWatch(path)
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))  # one nanosecond later
    assert watch.changed() and not watch.changed()
    stamp = path.stat()
    with path.open("a") as f:
        f.write("b: 2\n")
    _same_times(path, stamp)  # same mtime (a coarse clock), longer file
    assert watch.changed() and not watch.changed()


def test_an_atomic_replace_with_the_same_size_and_mtime_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("fps: 1\n")
    watch = FileWatch(path)
    old = path.stat()
    new = tmp_path / "cams.yaml.tmp"
    new.write_text("fps: 2\n")
    _same_times(new, old)
    os.replace(new, path)
    assert watch.changed()


def test_a_file_missing_for_a_moment_is_no_change_and_its_return_is(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("fps: 1\n")
    watch = FileWatch(path)
    path.unlink()
    assert not watch.changed() and not watch.changed()
    path.write_text("fps: 22\n")
    assert watch.changed() and not watch.changed()


def test_unseen_counts_the_first_look_and_a_late_file(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    assert not FileWatch(path, seen=False).changed()  # not there yet
    late = FileWatch(path)
    path.write_text("a: 1\n")
    assert late.changed()
    first = FileWatch(path, seen=False)
    assert first.changed() and not first.changed()
