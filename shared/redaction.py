"""Removing secrets from URLs and messages before they are logged, published or shown.

Every place that prints, logs, stores or serves a camera or Redis URL goes through `redact_url`, and
free text that may embed URLs (library error messages) through `redact_text`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

MASK = "***"
# Query and fragment parameter names that carry credentials, compared after lower-casing and dropping
# everything but letters and digits ("API-Key", "api_key" and "apikey" are the same name).
SECRET_NAMES: frozenset[str] = frozenset({
    "user", "username", "usr", "login",
    "pass", "passwd", "password", "pwd", "pw", "passphrase",
    "token", "accesstoken", "authtoken", "refreshtoken", "idtoken", "bearer", "jwt",
    "key", "apikey", "accesskey", "secretkey", "privatekey", "subscriptionkey",
    "auth", "authorization", "authkey", "secret", "clientsecret",
    "signature", "sig", "xamzsignature", "xamzcredential", "xamzsecuritytoken", "hmac",
    "credential", "credentials", "cred", "session", "sessionid", "sid",
})
# Any name containing one of these is a secret too (e.g. "camera_password", "x-goog-signature").
SECRET_PARTS: tuple[str, ...] = ("pass", "pwd", "token", "secret", "key", "auth", "sig", "cred", "session")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)
_URL_IN_TEXT_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def is_secret_name(name: str) -> bool:
    """True when a query parameter called `name` probably holds a credential."""
    plain = re.sub(r"[^a-z0-9]", "", unquote_plus(name).lower())
    return plain in SECRET_NAMES or any(part in plain for part in SECRET_PARTS)


def redact_url(url: str) -> str:
    """The URL with its userinfo and every secret-looking query or fragment parameter replaced by ***.

    The userinfo ends at the last '@' before the query string, so a password holding '@' (which
    ffmpeg accepts) is hidden whole: `rtsp://admin:p@ss@host/s` -> `rtsp://***@host/s`.
    Text that is not a URL (a file path, a webcam index) comes back unchanged.
    """
    match = _SCHEME_RE.match(url)
    if not match:
        return url
    scheme, rest = match.groups()
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    at = rest.rfind("@")
    if at >= 0:
        rest = f"{MASK}@{rest[at + 1:]}"
    elif question and "/" not in rest and (userinfo := re.match(r"[^/&=#]*@", query)):
        rest, query = f"{MASK}@", query[userinfo.end():]  # a '?' inside the password
        rest, question, query = (rest + query).partition("?")
    out = scheme + rest
    if question:
        out += "?" + _redact_params(query)
    if hash_:
        out += "#" + _redact_params(fragment)
    return out


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every URL in it redacted and each of `secrets` (non-empty strings) replaced by ***."""
    text = _URL_IN_TEXT_RE.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _redact_params(params: str) -> str:
    parts = []
    for part in re.split(r"([&;])", params):
        if part in ("&", ";"):
            parts.append(part)
            continue
        name, equals, value = part.partition("=")
        if equals and value and is_secret_name(name):
            value = MASK
        parts.append(name + equals + value)
    return "".join(parts)
