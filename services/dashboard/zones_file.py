"""Read and replace one camera's `zones:` and `lines:` in the config file, keeping the rest of it as it was.

The file is edited as YAML round-trip (ruamel.yaml): comments, key order, quoting and the other cameras stay
byte for byte; the new text is validated with `shared.config.parse_config` (the same check the services'
hot reload runs) before it replaces the file atomically.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from shared.atomic_file import write_atomically
from shared.config import CameraConfig, ConfigError, parse_config
from shared.zones import geometry_problem

_STR_TAG = "tag:yaml.org,2002:str"
_SAVE_LOCK = threading.Lock()  # one read-modify-write of the file at a time in this process
_FLAT_SEQUENCES = re.compile(r"^cameras:[ \t]*(#.*)?\n(?:[ \t]*#.*\n|[ \t]*\n)*- ", re.MULTILINE)


class ZonesFileError(Exception):
    """The file cannot be read or saved as asked; `status` is the HTTP answer, the message one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CameraZones:
    """One camera's zones and lines as the config file has them, and the version of the file they came from."""

    camera: str
    zones: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    version: str
    problem: str | None = None  # the file's zones or lines of this camera are bad: the services run without them


def file_version(text: str) -> str:
    """A short fingerprint of the file's text: a save names the version it edited (409 when it changed)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_zones(path: Path, camera: str) -> CameraZones:
    """The validated zones and lines of `camera` in the config file at `path`."""
    text = _read(path)
    try:
        config = parse_config(text, base_dir=path.parent, name=str(path))
    except ConfigError as exc:
        raise ZonesFileError(409, str(exc)) from None
    found = next((cam for cam in config.cameras if cam.id == camera), None)
    if found is None:
        problem = config.invalid_cameras.get(camera)
        raise ZonesFileError(409 if problem else 404, problem or f"camera {camera!r} is not in {path}")
    return CameraZones(camera, _dumped(found, "zones"), _dumped(found, "lines"), file_version(text),
                       config.geometry_problems.get(camera))


def save_zones(path: Path, camera: str, zones: list[dict[str, Any]], lines: list[dict[str, Any]],
               version: str | None = None) -> CameraZones:
    """Replace `camera`'s zones and lines in the file (an empty list removes the key) and return what was saved.

    Raises ZonesFileError: 404 unknown camera, 409 the file changed since `version` or is unusable,
    422 the new zones or lines do not validate (the config loader's one-line error).
    """
    problem = geometry_problem(zones, lines)  # before the file is touched, with the models' own limits
    if problem:
        raise ZonesFileError(422, f"camera {camera!r}: {problem}")
    with _SAVE_LOCK:
        text = _read(path)
        if version is not None and version != file_version(text):
            raise ZonesFileError(409, f"{path} changed since it was loaded; reload the page and edit again")
        try:
            parse_config(text, base_dir=path.parent, name=str(path))  # the file as it is must load (size/depth limits)
        except ConfigError as exc:
            raise ZonesFileError(409, str(exc)) from None
        new_text = replace_zones(text, camera, zones, lines, name=str(path))
        try:
            config = parse_config(new_text, base_dir=path.parent, name=str(path))
        except ConfigError as exc:
            raise ZonesFileError(409, str(exc)) from None
        problem = config.geometry_problems.get(camera) or config.invalid_cameras.get(camera) or next(
            (p for p in config.problems if f"(id {camera!r})" in p), None)
        if problem:
            raise ZonesFileError(422, problem)
        try:
            write_atomically(path, new_text, mode=path.stat().st_mode & 0o7777)
        except OSError as exc:
            raise ZonesFileError(409, f"{path}: cannot write ({exc.strerror or exc})") from None
        saved = next(cam for cam in config.cameras if cam.id == camera)
        return CameraZones(camera, _dumped(saved, "zones"), _dumped(saved, "lines"), file_version(new_text))


def replace_zones(text: str, camera: str, zones: list[dict[str, Any]], lines: list[dict[str, Any]],
                  name: str = "config") -> str:
    """The config text with `camera`'s `zones:` and `lines:` replaced; every other byte as it was."""
    yaml = _yaml(text)
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise ZonesFileError(409, f"{name}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    cameras = data.get("cameras") if isinstance(data, dict) else None
    entry = next((c for c in cameras or [] if isinstance(c, dict) and c.get("id") == camera), None)
    if entry is None:
        raise ZonesFileError(404, f"camera {camera!r} is not in {name}")
    for key, items in (("zones", zones), ("lines", lines)):
        if items:
            entry[key] = _block_list(items)
        else:
            entry.pop(key, None)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def writable_problem(path: Path | None) -> str | None:
    """Why the dashboard cannot save into the config file, or None when it can."""
    if path is None:
        return "the dashboard runs without --config"
    if not path.is_file():
        return f"{path} does not exist"
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return f"{path} (or its folder) is not writable by the dashboard"
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ZonesFileError(409, f"{path}: cannot read config ({exc.strerror or exc})") from None


def _yaml(text: str) -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    if _FLAT_SEQUENCES.search(text):
        yaml.indent(mapping=2, sequence=2, offset=0)  # "cameras:\n- id: ..."
    else:
        yaml.indent(mapping=2, sequence=4, offset=2)  # "cameras:\n  - id: ..." (the shipped example's style)
    return yaml


def _block_list(items: list[dict[str, Any]]) -> CommentedSeq:
    """Entries as block mappings with their point lists in flow style: `points: [[0.1, 0.4], [0.9, 0.4]]`."""
    out = CommentedSeq()
    for item in items:
        entry = CommentedMap()
        for key, value in item.items():
            if key == "points" and isinstance(value, list):
                points = CommentedSeq(_flow(p) if isinstance(p, list) else p for p in value)
                points.fa.set_flow_style()
                value = points
            entry[key] = _as_loaded(value)
        out.append(entry)
    return out


def _as_loaded(value: Any) -> Any:
    """A string quoted where the services' YAML 1.1 loader would read it as something else (`on`, `no`, `1_0`):
    ruamel writes YAML 1.2, where those are plain strings."""
    if isinstance(value, str) and yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False)) != _STR_TAG:
        return SingleQuotedScalarString(value)
    return value


def _flow(values: list) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _dumped(camera: CameraConfig, key: str) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", by_alias=True, exclude_defaults=True) for item in getattr(camera, key)]
