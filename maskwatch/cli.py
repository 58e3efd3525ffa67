"""The `maskwatch` command: each area of the project registers its own subcommands.

Exit statuses and error lines follow one convention (shared/exit_codes.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from shared.exit_codes import INTERRUPTED

# Quiet the native libraries before anything imports them: our own messages are the one-line errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

COMMAND_MODULES: tuple[str, ...] = (
    "maskwatch.detect_command",
    "services.dashboard.cli",
    "services.cli",
    "services.mqtt.cli",
    "services.recorder.cli",
    "training.cli",
    "training.detector.cli",
    "shared.review.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="maskwatch", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("MASKWATCH_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, configure logging, run the chosen subcommand and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
