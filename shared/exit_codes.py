"""One exit-status and error-line convention for every `maskwatch` command.

- 0 `OK`: done (a service: stopped cleanly on SIGTERM/SIGINT).
- 1 `FAILED`: started but failed (Redis unreachable, some sources unreadable, a job that broke).
- 2 `USAGE`: cannot start as asked: bad arguments, a bad config file, no usable model.
- 130 `INTERRUPTED`: Ctrl-C during a one-off command.

Errors are one line on stderr starting with `error: ` (warnings with `warning: `), never a traceback.
"""

from __future__ import annotations

import sys

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


def fail(message: str, code: int = FAILED) -> int:
    """Print `error: message` (one line) on stderr and return `code` for the command to exit with."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def warn(message: str) -> None:
    """Print `warning: message` (one line) on stderr."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)
