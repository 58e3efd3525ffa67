"""The detector plug-in registry: a detector version's meta.json names its `format`, a class serves it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shared.model_store import ModelError, ModelVersion

FORMATS: dict[str, type] = {}
DEFAULT_FORMAT = "retinaface-onnx"  # versions written before formats were named
T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: serve detector versions whose meta.json says `"format": name`."""

    def wrap(cls: T) -> T:
        FORMATS[name] = cls
        cls.format = name
        return cls

    return wrap


def detector_class(fmt: str) -> type:
    """The class registered for a format; ModelError (one line) for an unknown one."""
    import shared.detectors  # noqa: F401  (registers the built-in formats)

    try:
        return FORMATS[fmt]
    except KeyError:
        raise ModelError(f"unknown detector format {fmt!r} (known: {', '.join(sorted(FORMATS))})") from None


def detector_from_version(version: ModelVersion, **options: Any) -> Any:
    """Build the detector of a store version through its format's class.

    Options the caller leaves out come from the version's `defaults` in meta.json (min_face,
    score_threshold, max_pixels ... chosen on the validation split), then from the class.
    """
    cls = detector_class(version.meta.get("format", DEFAULT_FORMAT))
    merged = {**version.meta.get("defaults", {}), **{k: v for k, v in options.items() if v is not None}}
    try:
        return cls.from_version(version, **merged)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"detector version {version.name!r} cannot be loaded: {exc}") from None
