"""Loading YAML that a user (or an attacker) wrote, with size, nesting and expansion limits checked first.

The limits are checked on libyaml's event stream, which is parsed iteratively and cheaply, before any
Python object is built: a `[[[[...]]]]` thousands of levels deep, a huge file or an alias bomb
("billion laughs") is refused with one line instead of a RecursionError, a hang or gigabytes of memory.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 4 * 2**20  # 10,000 camera entries take about 0.7 MiB
MAX_DEPTH = 32  # the deepest real config (zone polygons) nests 6 levels
MAX_NODES = 1_000_000  # values after expanding aliases (10,000 cameras are about 80,000)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster, never recursive in Python


class YamlLimitError(ValueError):
    """YAML that is unusable or over a limit; the message is one line (with the line number when known)."""


def load_yaml(text: str) -> Any:
    """The Python value of YAML `text` (safe types only); raises `YamlLimitError` for bad or oversized input."""
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"larger than {MAX_BYTES // 2**20} MiB")
    try:
        check_limits(text)
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise YamlLimitError(f"not valid YAML{where}: {problem}") from None


def check_limits(text: str) -> None:
    """Walk the YAML events and raise `YamlLimitError` past `MAX_DEPTH` levels or `MAX_NODES` expanded values."""
    open_counts: list[int] = []  # values inside each open collection, aliases expanded
    open_anchors: list[str | None] = []
    anchored: dict[str, int] = {}
    total = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_counts) >= MAX_DEPTH:
                raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels at line {event.start_mark.line + 1}")
            open_counts.append(1)
            open_anchors.append(event.anchor)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            weight, anchor = open_counts.pop(), open_anchors.pop()
        elif isinstance(event, yaml.AliasEvent):
            weight, anchor = anchored.get(event.anchor, 1), None
        elif isinstance(event, yaml.ScalarEvent):
            weight, anchor = 1, event.anchor
        else:
            continue
        if anchor is not None:
            anchored[anchor] = weight
        if open_counts:
            open_counts[-1] += weight
            if open_counts[-1] > MAX_NODES:
                raise YamlLimitError(f"more than {MAX_NODES} values (aliases expanded) at line "
                                     f"{event.start_mark.line + 1}")
        else:
            total += weight
        if total > MAX_NODES:
            raise YamlLimitError(f"more than {MAX_NODES} values (aliases expanded)")
