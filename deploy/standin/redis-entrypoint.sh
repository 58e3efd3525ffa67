#!/bin/sh
# redis-server as the redis user with protected mode off, as the official image runs it.
set -e
if [ "${1:-}" = "redis-server" ]; then
    shift
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
fi
exec "$@"
