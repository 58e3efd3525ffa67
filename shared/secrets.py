"""Where a password comes from: an environment variable, else a file (a Docker or Kubernetes secret mount).

Public API:
- `password_from(env, password_env, file_env, configured_file, label, error) -> str | None`: the password, or None.

The secret itself is never put in an error message; only the file's path is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def password_from(env: Mapping[str, str], password_env: str, file_env: str, configured_file: Path | str | None,
                  label: str, error: type[ValueError]) -> str | None:
    """`env[password_env]`, else the stripped contents of `env[file_env]` or `configured_file`; None if empty or unset.

    An unreadable file raises `error("<label> password file <path>: cannot read (<reason>)")`.
    """
    password = env.get(password_env)
    if password:
        return password
    path = env.get(file_env) or configured_file
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise error(f"{label} password file {path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise error(f"{label} password file {path}: cannot read (not UTF-8 text)") from None
