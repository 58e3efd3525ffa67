"""Versioned model store: immutable version folders per kind and a CURRENT pointer per kind.

Layout::

    <root>/<kind>/<version>/meta.json     # written last; lists every file with its sha256
    <root>/<kind>/<version>/...           # model file(s), metrics, model card, split lists
    <root>/<kind>/CURRENT                 # name of the version the services run

`kind` is "classifier" or "detector".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.atomic_file import write_atomically

KINDS: tuple[str, ...] = ("classifier", "detector")
META_FILE = "meta.json"
POINTER_FILE = "CURRENT"
ROLLBACK_FILE = "ROLLBACK"  # the version promoted before the current one (setup.py ships both in the wheel)
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REPO_MODELS = Path(__file__).resolve().parents[1] / "models"  # a source checkout (or editable install)
PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "maskwatch" / "models"  # a wheel (setup.py maps models/)


class ModelError(RuntimeError):
    """A missing, corrupt or incomplete model version; the message is one line for the user."""


def default_store_root() -> Path:
    """The store the services use: $MASKWATCH_MODELS, else ./models, else the shipped models.

    The shipped models are the repository's models/ in a source checkout, or the copy installed with the
    wheel (maskwatch/models in site-packages); `maskwatch models path` prints the one in use.
    """
    env = os.environ.get("MASKWATCH_MODELS")
    if env:
        return Path(env)
    for root in (Path.cwd() / "models", REPO_MODELS, PACKAGED_MODELS):
        if (root / "classifier").is_dir() or (root / "detector").is_dir():
            return root
    return REPO_MODELS


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelVersion:
    """A validated model version: its folder and parsed meta.json."""

    kind: str
    name: str
    path: Path
    meta: dict[str, Any]

    def file(self, key: str = "model_file") -> Path:
        """Path of a file named in meta.json (by default the serving model)."""
        return self.path / self.meta[key]

    def model_files(self) -> list[Path]:
        """The serving model files: one, or the members of an ensemble (whose outputs are averaged)."""
        return [self.path / rel for rel in self.meta.get("model_files", [self.meta["model_file"]])]


class ModelStore:
    """Read, validate, write and promote model versions under one root folder."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_root()

    def kind_dir(self, kind: str) -> Path:
        """Folder holding all versions of one kind."""
        if kind not in KINDS:
            raise ModelError(f"unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")
        return self.root / kind

    def versions(self, kind: str) -> list[str]:
        """Names of the version folders of a kind, sorted (complete or not)."""
        folder = self.kind_dir(kind)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def current(self, kind: str) -> str | None:
        """Name of the promoted version of a kind, or None when nothing is promoted."""
        pointer = self.kind_dir(kind) / POINTER_FILE
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def rollback_target(self, kind: str) -> str | None:
        """The version that was promoted before the current one (`models promote` records it), if any."""
        try:
            return (self.kind_dir(kind) / ROLLBACK_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def promote(self, kind: str, name: str) -> ModelVersion:
        """Make `name` the version the services run (validated first, pointer replaced atomically); the
        version it replaces becomes the rollback target."""
        version = self.load(kind, name)
        previous = self.current(kind)
        if previous and previous != name:
            write_atomically(self.kind_dir(kind) / ROLLBACK_FILE, previous + "\n")
        write_atomically(self.kind_dir(kind) / POINTER_FILE, name + "\n")
        return version

    def load(self, kind: str, name: str | None = None) -> ModelVersion:
        """Validate and return a version (the promoted one when `name` is None)."""
        name = name or self.current(kind)
        if not name:
            raise ModelError(f"no {kind} model promoted in {self.kind_dir(kind)} (run `maskwatch models promote`)")
        if not _VERSION_RE.match(name):
            raise ModelError(f"invalid {kind} version name {name!r}")
        path = self.kind_dir(kind) / name
        if not path.is_dir():
            raise ModelError(f"{kind} version {name!r} not found in {self.kind_dir(kind)}")
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise ModelError(f"{kind} version {name!r} is incomplete: no {META_FILE}") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{kind} version {name!r} has an unreadable {META_FILE}: {exc}") from None
        files = meta.get("files")
        if not isinstance(files, dict) or "model_file" not in meta or meta["model_file"] not in files:
            raise ModelError(f"{kind} version {name!r} is incomplete: {META_FILE} lacks model_file/files")
        unlisted = [rel for rel in meta.get("model_files", []) if rel not in files]
        if unlisted:
            raise ModelError(f"{kind} version {name!r} is incomplete: model file {unlisted[0]} is not checksummed")
        for rel, digest in files.items():
            target = path / rel
            if not target.is_file():
                raise ModelError(f"{kind} version {name!r} is incomplete: {rel} is missing")
            if sha256_file(target) != digest:
                raise ModelError(f"{kind} version {name!r} is corrupt: {rel} does not match its checksum")
        return ModelVersion(kind=kind, name=name, path=path, meta=meta)

    def finalize(self, kind: str, path: Path, meta: dict[str, Any]) -> ModelVersion:
        """Checksum every file in a finished version folder and write meta.json last (marks it complete)."""
        files = {
            str(p.relative_to(path)): sha256_file(p)
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != META_FILE
        }
        full = {**meta, "kind": kind, "version": path.name, "files": files}
        write_atomically(path / META_FILE, json.dumps(full, indent=2, sort_keys=True) + "\n")
        return self.load(kind, path.name)


class ModelWatcher:
    """Tells when the promoted version of a kind changes, checking the pointer at most every `interval` s."""

    def __init__(self, store: ModelStore, kind: str, interval: float = 2.0) -> None:
        self.store, self.kind, self.interval = store, kind, interval
        self._seen: str | None = None
        self._checked = float("-inf")

    def sync(self) -> None:
        """Take the version promoted now as seen (just before loading it)."""
        self._seen = self.store.current(self.kind)

    def changed(self, now: float) -> str | None:
        """The newly promoted version name when it differs from the last one seen, else None."""
        if now - self._checked < self.interval:
            return None
        self._checked = now
        name = self.store.current(self.kind)
        if name and name != self._seen:
            self._seen = name
            return name
        return None
