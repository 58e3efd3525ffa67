"""`maskwatch-health`: the containers' healthcheck (light: the standard library only, no `maskwatch` parser).

Exit 0 when the service's heartbeat file ($MASKWATCH_HEARTBEAT, touched by its loop: services/lifecycle.py)
is fresh, or with --url when that URL answers 200 (the dashboard's /api/v1/health); else one error line, 1.
Where the dashboard serves HTTPS from $MASKWATCH_TLS_CERT (a container's mounted files), an http:// URL is
asked over https:// without checking the certificate: the check reaches its own container, not a peer.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request

from services.dashboard import TLS_CERT_ENV
from services.lifecycle import HEARTBEAT_ENV, heartbeat_age
from shared.exit_codes import FAILED, OK, USAGE, fail


def check(max_age: float, url: str | None) -> int:
    """The exit status of one check (an error line printed when it fails)."""
    if url:
        context = None
        if os.environ.get(TLS_CERT_ENV) and url.startswith("http://"):
            url, context = "https://" + url.removeprefix("http://"), ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=5.0, context=context) as reply:  # noqa: S310 (the operator's URL)
                status = reply.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return fail(f"{url}: {getattr(exc, 'reason', exc)}")
        return OK if status == 200 else fail(f"{url}: HTTP {status}")
    path = os.environ.get(HEARTBEAT_ENV)
    if not path:
        return fail(f"no heartbeat file: set {HEARTBEAT_ENV} for the service and for this check", USAGE)
    age = heartbeat_age(path)
    if age is None:
        return fail(f"no heartbeat yet in {path}", FAILED)
    if age > max_age:
        return fail(f"last heartbeat {age:.0f} s ago in {path} (limit {max_age:.0f} s)", FAILED)
    return OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `maskwatch-health`."""
    parser = argparse.ArgumentParser(prog="maskwatch-health", description=__doc__)
    parser.add_argument("--max-age", type=float, default=30.0,
                        help=f"seconds since the last heartbeat (${HEARTBEAT_ENV}) (default 30)")
    parser.add_argument("--url", help="check that this URL answers 200 instead")
    args = parser.parse_args(argv)
    return check(args.max_age, args.url)


if __name__ == "__main__":
    sys.exit(main())
