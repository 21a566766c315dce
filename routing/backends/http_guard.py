"""What every HTTP client of the app enforces, whichever library drives it.

Two rules, installed as httpx event hooks on every client the backends build (``httpx``
for halext and Ollama, pydantic's ``httpx2`` under the ``openai`` client — both call the
same hooks the same way):

- **No redirect is followed.** A 3xx answer is raised as ``RedirectRefused`` from the
  response hook, before any library can act on it: ``httpx`` would re-post the whole prompt
  to the ``Location`` (the ``ollama`` and ``openai`` clients turn that on by default), and
  the libraries' own status errors drop the ``Location``, which is the one thing the user
  needs to see. Clients are also built with ``follow_redirects=False``; the hook is the
  rule, the flag a second line.
- **A credential goes only to the host it belongs to.** The request hook sets the
  ``Authorization`` header on requests to the client's own origin (scheme, host, port) and
  removes it from any other (the ``ollama`` client adds ``OLLAMA_API_KEY`` to every
  request, whatever the host, and its ``headers`` argument cannot turn that off).

``credentials_allowed`` says whether a credential may travel to a URL at all: over https,
to this machine, or to a plain-http address the user accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from halext_desktop.routing.backends.http_errors import netloc_of
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.netloc import is_loopback_url

REDIRECT_HINT = "set the address you mean in Settings"
# Longest Location repeated in a message (a proxy may send a long login URL).
_MAX_LOCATION = 160

Hook = Callable[[Any], Awaitable[None]]


class RedirectRefused(Exception):
    """A server answered with a redirect, which was not followed.

    Deliberately not an ``httpx`` error: libraries that wrap or retry transport errors
    (the ``openai`` client retries them) let a foreign exception through untouched.

    Attributes:
        where: ``host:port`` of the server that redirected.
        status: the 3xx status.
        location: where it pointed, made absolute, without any user:password part; "" when
            the answer had no ``Location``.
        path: the path that was asked.
    """

    def __init__(self, where: str, status: int, location: str, path: str) -> None:
        self.where = where
        self.status = status
        self.location = location
        self.path = path
        super().__init__(redirect_message(where, status, location))


def redirect_message(where: str, status: int, location: str) -> str:
    target = f"a redirect to {location}" if location else f"a redirect ({status}) without a target"
    return f"{where} answered with {target}; not followed"


def _clean_location(base: Any, raw: str) -> str:
    """``raw`` resolved against the request URL, credentials removed, kept short."""
    try:
        absolute = str(base.join(raw)) if raw else ""
    except Exception:  # a Location that is not a URL: show what was written
        absolute = raw
    parts = urlsplit(absolute)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        absolute = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    absolute = "".join(ch for ch in absolute if ch.isprintable())
    if len(absolute) > _MAX_LOCATION:
        absolute = absolute[: _MAX_LOCATION - 1] + "…"
    return absolute


async def refuse_redirects(response: Any) -> None:
    """httpx/httpx2 response hook: any 3xx (but 304) becomes RedirectRefused."""
    status = int(response.status_code)
    if not 300 <= status < 400 or status == 304:
        return
    request = response.request
    url = request.url
    raise RedirectRefused(
        netloc_of(str(url)),
        status,
        _clean_location(url, response.headers.get("location", "")),
        url.path,
    )


def redirect_error(exc: RedirectRefused, route_id: str) -> RouteError:
    """The RouteError a backend reports for a refused redirect."""
    return RouteError(
        ErrorKind.REDIRECT,
        str(exc),
        REDIRECT_HINT,
        status=exc.status,
        route_id=route_id,
    )


def _origin(url: Any) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def bind_authorization(base_url: str, authorization: str | None) -> Hook:
    """httpx/httpx2 request hook: ``Authorization: authorization`` on requests to
    ``base_url``'s origin only (None: never), and no ``Authorization`` anywhere else."""
    own = _origin(base_url)

    async def hook(request: Any) -> None:
        if authorization is not None and _origin(request.url) == own:
            request.headers["Authorization"] = authorization
        else:
            request.headers.pop("Authorization", None)

    return hook


def authorization_only_to(base_url: str) -> Hook:
    """httpx request hook for clients that set ``Authorization`` per request (halext's
    token): kept on requests to ``base_url``'s origin, removed from any other."""
    own = _origin(base_url)

    async def hook(request: Any) -> None:
        if _origin(request.url) != own:
            request.headers.pop("Authorization", None)

    return hook


def is_plain_http_remote(url: str) -> bool:
    """True for ``http://`` to another machine: what travels there can be read on the way."""
    return urlsplit(url.strip()).scheme.lower() == "http" and not is_loopback_url(url)


def plain_http_key(url: str) -> str:
    """How a consent to plain http names its server: ``host:port``."""
    return netloc_of(url.strip())


def credentials_allowed(url: str, consented: Collection[str]) -> bool:
    """Whether a password, token or key may be sent to ``url``: https, this machine, or a
    plain-http server whose ``host:port`` the user accepted (``consented``)."""
    return not is_plain_http_remote(url) or plain_http_key(url) in consented


def insecure_error(url: str, what: str, route_id: str) -> RouteError:
    """Why ``what`` (``your halext password``, ``the API key``) was not sent to ``url``."""
    where = plain_http_key(url)
    return RouteError(
        ErrorKind.INSECURE,
        f"{what} was not sent: {where} is plain http:// to another machine, "
        "so it would travel unencrypted",
        "Use https://, or sign in again in Settings → Connections and accept plain http "
        "for this server (the command line sends it with a warning)",
        route_id=route_id,
    )
