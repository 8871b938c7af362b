"""Post a short summary to a chat webhook (Slack-compatible: a JSON body ``{"text": ...}``).

The URL of an incoming webhook is a secret (whoever has it can post to the channel), so it is
usually given as ``${env:NAME}`` and its value never appears in an error message: errors name
the variable, the HTTP status or the kind of connection failure, never the URL or a part of it.

Example::

    post_summary("${env:SWEEP_WEBHOOK}", "sweep 2 scopes: 2 completed", env=os.environ)
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import IO
from urllib.parse import unquote, urlsplit

from teardown.core.config import ENV_REF
from teardown.core.errors import ConfigError, PermanentError, TransientError
from teardown.core.text import printable

Post = Callable[[urllib.request.Request, float], int]
"""Sends a prepared request with a timeout in seconds and returns the HTTP status; raises
:class:`OSError` (``TimeoutError``, ``ConnectionError``, ``urllib.error.URLError``) when no
response came."""

SOURCE = "notify URL"
"""What configuration errors name as their source (the URL itself is never shown)."""

_HIDDEN = "<webhook>"


def post_summary(
    url: str,
    text: str,
    *,
    env: Mapping[str, str],
    timeout: float = 10,
    post: Post | None = None,
) -> None:
    """POST ``{"text": text}`` as JSON to ``url`` after resolving ``${env:NAME}`` in it.

    Raises :class:`ConfigError` (a variable is missing or empty, or the URL is not http(s)),
    :class:`TransientError` (no response, a timeout, HTTP 5xx or 429: worth retrying later) or
    :class:`PermanentError` (any other status that is not 2xx, a redirect included: redirects
    are not followed, since a redirected POST would silently become a GET).
    """
    resolved = resolve_url(url, env)
    request = urllib.request.Request(
        resolved,
        data=json.dumps({"text": text}).encode("ascii"),
        headers={"Content-Type": "application/json", "User-Agent": "teardown"},
        method="POST",
    )
    send = post or _urlopen
    try:
        status = send(request, timeout)
    except urllib.error.HTTPError as exc:  # a custom ``post`` may let one through
        status = exc.code
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise TransientError(
            f"webhook POST failed: no response ({_failure(exc, resolved)})"
        ) from None
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise TransientError(f"webhook POST failed: HTTP {status}", code=str(status))
    hint = "redirects are not followed" if 300 <= status < 400 else None
    raise PermanentError(f"webhook POST failed: HTTP {status}", code=str(status), hint=hint)


def resolve_url(url: str, env: Mapping[str, str]) -> str:
    """``url`` with each ``${env:NAME}`` replaced by the variable's value; :class:`ConfigError`
    naming the missing (or empty) variables, or saying the result is not an http(s) URL."""
    names = list(dict.fromkeys(ENV_REF.findall(url)))
    missing = [name for name in names if not env.get(name, "").strip()]
    if missing:
        listed = ", ".join(f"${{env:{name}}}" for name in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(SOURCE, f"{listed} {verb} not set in the environment")
    if "${" in ENV_REF.sub("", url):
        raise ConfigError(SOURCE, "holds a '${' that is not a ${env:NAME} reference")
    resolved = ENV_REF.sub(lambda m: env[m.group(1)].strip(), url).strip()
    if any(c <= " " or c == "\x7f" for c in resolved):
        raise ConfigError(SOURCE, "holds a space or a control character")
    try:
        parts = urlsplit(resolved)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(SOURCE, "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(SOURCE, "must be an http:// or https:// URL with a host")
    return resolved


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not an instruction: urllib would re-send a POST as a GET."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _urlopen(request: urllib.request.Request, timeout: float) -> int:
    """The default :data:`Post`: stdlib urllib (proxies from the environment), no redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _failure(exc: BaseException, url: str) -> str:
    """What kind of failure ``exc`` is, with any piece of ``url`` in its text hidden."""
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    kind = type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__
    detail = str(reason)
    if isinstance(reason, OSError) and reason.strerror:
        detail = reason.strerror
    return f"{kind}: {printable(_scrub(detail, url))}" if detail else kind


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL, its host and its path (plain or percent-decoded) hidden."""
    parts = urlsplit(url)
    pieces = {url, parts.netloc, parts.hostname or "", parts.path, parts.query}
    pieces |= {unquote(p) for p in pieces}
    for piece in sorted((p for p in pieces if len(p) > 1), key=len, reverse=True):
        text = text.replace(piece, _HIDDEN)
    return re.sub(f"(?:{re.escape(_HIDDEN)})+", _HIDDEN, text)


__all__ = ["SOURCE", "Post", "post_summary", "resolve_url"]
