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
    "user", "username", "usr", "login", "loginuse", "u",
    "pass", "passwd", "password", "pwd", "pw", "psw", "passphrase", "loginpas", "p",
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
# user:password@host written without a scheme (the probe's `admin:pw@host`), also inside a file path
_CREDENTIALS_IN_TEXT_RE = re.compile(r"[^\s'\"<>]*:[^\s'\"<>]*@(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)")
# an '@' that ends the userinfo: a host (name, IPv4 or [IPv6]) and optional port follow, then the end or / ? # ;
_HOST_AFTER_AT_RE = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")
_PORT_END_RE = re.compile(r"(?::\d*)?(?:[/?#;]|$)")
# name=value pairs after the host: in the path (Dahua's /user=admin_password=x_channel=1, Axis' ;password=x),
# the query and the fragment; a value runs to the next & ; / ? # (so whatever follows a secret's name is hidden)
_PARAM_RE = re.compile(r"(?:(?<=^)|(?<=[/?#&;]))([A-Za-z0-9_.%+\-]+)=([^&;/?#]*)")
_UNDERSCORE_PARAM_RE = re.compile(r"_(?=[A-Za-z][A-Za-z0-9.%+\-]*=)")  # Dahua's name=value_name=value


def is_secret_name(name: str) -> bool:
    """True when a query parameter called `name` probably holds a credential."""
    plain = re.sub(r"[^a-z0-9]", "", unquote_plus(name).lower())
    return plain in SECRET_NAMES or any(part in plain for part in SECRET_PARTS)


def redact_url(url: str) -> str:
    """The URL with its userinfo and every secret-looking parameter value replaced by ***.

    The userinfo ends at the last '@' that a host follows, so a password holding '@', '#', '?', '/' or ';'
    is hidden whole: `rtsp://admin:p@ss#1@host/s` -> `rtsp://***@host/s`. Without a scheme,
    `admin:pw@host/s` (even inside a file path) is hidden the same way. Parameters are hidden wherever
    cameras put them: the query (`?pwd=`), the fragment, the path (`;password=`, `/user=x_password=y`).
    Where a URL reads two ways (an '@' inside a token), what either reading calls secret is hidden.
    Text that holds no credentials (a file path, a webcam index) comes back unchanged.
    """
    match = _SCHEME_RE.match(url)
    scheme, rest = match.groups() if match else ("", url)
    hidden: list[tuple[int, int]] = []
    at = _userinfo_end(rest)
    if at is not None and scheme:
        hidden.append((0, at))
    elif at is not None and ":" in rest[:at]:
        hidden.append((rest.rfind("/", 0, rest.index(":")) + 1, at))
    elif not scheme:
        return url  # a file path or a webcam index
    hidden += _secret_values(rest)
    return scheme + _mask(rest, hidden)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every URL (and user:password@host) in it redacted and each of `secrets` replaced by ***."""
    text = _URL_IN_TEXT_RE.sub(lambda m: redact_url(m.group(0)), text)
    text = _CREDENTIALS_IN_TEXT_RE.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _userinfo_end(rest: str) -> int | None:
    """Index of the '@' ending the userinfo of `rest` (the URL after its scheme): the last one a host follows."""
    candidates = [i for i, char in enumerate(rest) if char == "@" and _host_follows(rest, i + 1)]
    return candidates[-1] if candidates else None


def _host_follows(text: str, start: int) -> bool:
    host = _HOST_AFTER_AT_RE.match(text, start)
    return host is not None and _PORT_END_RE.match(text, host.end()) is not None


def _secret_values(text: str) -> list[tuple[int, int]]:
    """(start, end) of the value of every secret-named parameter in `text` (path, query and fragment)."""
    spans = []
    for match in _PARAM_RE.finditer(text):
        name, value = match.group(1), match.group(2)
        if is_secret_name(name):
            spans.append(match.span(2))
            continue
        offset = match.start(2)  # a value holding _name=value pairs (Dahua): hide from the first secret on
        for part in _UNDERSCORE_PARAM_RE.finditer(value):
            inner_name = value[part.end():].partition("=")[0]
            if is_secret_name(inner_name):
                spans.append((offset + part.end() + len(inner_name) + 1, match.end(2)))
                break
    return [(start, end) for start, end in spans if end > start]


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with every span (merged where they touch or overlap) replaced by one ***."""
    out, position = [], 0
    for start, end in sorted(spans):
        if out and start <= position:
            position = max(position, end)
            continue
        out += [text[position:start], MASK]
        position = end
    out.append(text[position:])
    return "".join(out)
