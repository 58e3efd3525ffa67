"""The detector plug-in registry: a detector version's meta.json names its `format`, a class serves it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shared.model_store import ModelError, ModelVersion

FORMATS: dict[str, type] = {}
DEFAULT_FORMAT = "retinaface-onnx"  # versions written before formats were named
# Serving policies: photos (one-off images: `detect` on images, the upload API) and streams (frames the tracker
# follows: a face must be seen on min_frames frames to count, so a lower score threshold costs little there)
POLICIES = ("photos", "streams")
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


def policy_defaults(meta: dict[str, Any], policy: str | None = None) -> dict[str, Any]:
    """A version's serving defaults for `policy` ("photos" or "streams"): its `defaults`, overridden by
    `policies[policy]` of its meta.json (both chosen by `maskwatch calibrate-detector`); ModelError for an
    unknown policy."""
    defaults = dict(meta.get("defaults", {}))
    if policy is None:
        return defaults
    if policy not in POLICIES:
        raise ModelError(f"unknown detector policy {policy!r} (known: {', '.join(POLICIES)})")
    return defaults | meta.get("policies", {}).get(policy, {})


def detector_from_version(version: ModelVersion, policy: str | None = None, **options: Any) -> Any:
    """Build the detector of a store version through its format's class.

    Options the caller leaves out come from the version's serving defaults for `policy` (photos: images
    and uploads; streams: frames that the tracker follows; None: `defaults` alone), then from the class.
    """
    cls = detector_class(version.meta.get("format", DEFAULT_FORMAT))
    merged = {**policy_defaults(version.meta, policy), **{k: v for k, v in options.items() if v is not None}}
    try:
        return cls.from_version(version, **merged)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"detector version {version.name!r} cannot be loaded: {exc}") from None
