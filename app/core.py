"""The composition root shared by the CLI and the GUI (no Qt here).

It reads the settings, starts the database's owner thread (which opens the database:
``Storage``), builds one backend per configured route and the Router over them. Nothing here
touches the network or waits for SQLite: the window opens at once even when no server is
reachable and while the database opens; a command waits for it with ``wait_open``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from halext_desktop.routing.backends.base import Backend, CredentialStore
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.policy import CLOUD_REASON, Policy
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.router import Router
from halext_desktop.routing.types import Health, Locality, ModelInfo, ModelListing
from halext_desktop.storage.chats import Conversations
from halext_desktop.storage.db import Database
from halext_desktop.storage.owner import CloseReport
from halext_desktop.storage.secrets import MemorySecretStore, SecretStore
from halext_desktop.storage.settings import DEFAULT_OLLAMA_URL, Settings
from halext_desktop.storage.store import OpenReport, Storage, Usage
from halext_desktop.storage.turns import Turns

if TYPE_CHECKING:
    from halext_desktop.routing.backends.halext import HalextBackend

    # Model management, halext's nodes and the route checks are imported where they are
    # used: a chat from the command line needs none of them.
    from halext_desktop.routing.backends.halext_admin import (
        AdminNodeList,
        HalextAdmin,
        NodeAction,
        NodeInfo,
        NodeTest,
    )
    from halext_desktop.routing.backends.ollama_models import (
        LoadedModel,
        ModelCard,
        OllamaModels,
        PullProgress,
    )
    from halext_desktop.routing.route_check import RouteCheck, RouteInfo
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

# Keyring names of the per-host Ollama API keys (an Ollama behind an authenticating proxy).
OLLAMA_KEY_PREFIX = "ollama-key:"
OPENAI_KEY_PREFIX = "openai-key:"
KEYRING_CACHE = "keyring-absent.json"  # names only (storage.secrets), never a value
PLAIN_HTTP_CONSENT = "consent"  # the window: credentials cross plain http only if accepted
PLAIN_HTTP_WARN = "warn"  # the command line: they do, and the command says so on stderr

CONNECT_HINT = (
    "Start Ollama (`ollama serve`) for local models, or sign in to halext with "
    "`halext-desktop login` (Settings → Connections in the app)."
)


@dataclass(frozen=True, slots=True)
class EnvCredentials:
    """HALEXT_USERNAME / HALEXT_PASSWORD: sign in for one process, write nothing."""

    username: str
    password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvCredentials | None:
        user, pw = env.get("HALEXT_USERNAME", ""), env.get("HALEXT_PASSWORD", "")
        return cls(user, pw) if user and pw else None


class Core:
    """Settings, storage, secrets, backends and the router, wired once.

    Implements ``ui.services.Services`` (the GUI's view of the app).

    Args:
        plain_http: what happens to a password, token or key bound for a plain-http address
            of another machine: ``"consent"`` (the window) sends it only to servers the
            user accepted (setting ``plain_http_ok``); ``"warn"`` (the command line) sends
            it, and ``plain_http_warnings`` says so for the command to print.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        db: Database | None = None,
        secrets: SecretStore | None = None,
        env: Mapping[str, str] | None = None,
        *,
        plain_http: str = PLAIN_HTTP_CONSENT,
        background_checks: bool = False,
    ) -> None:
        if plain_http not in (PLAIN_HTTP_CONSENT, PLAIN_HTTP_WARN):
            raise ValueError(f"plain_http: use {PLAIN_HTTP_CONSENT!r} or {PLAIN_HTTP_WARN!r}")
        self._plain_http = plain_http
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.settings = settings or Settings.load(env=self.env)
        self.db = db or Database()
        # Opens the database on its own thread; nothing here waits for it.
        self.storage = Storage(
            self.db,
            retention_days=self.settings.usage_retention_days,
            background_checks=background_checks,
        )
        # Names the keyring lacks are remembered next to the database for a day, so a start
        # that needs no secret (an Ollama host without a key) never loads the keyring.
        self.secrets = secrets or SecretStore(absent_cache=self.db.path.parent / KEYRING_CACHE)
        self.conversations: Conversations = self.storage.conversations
        self.usage: Usage = self.storage.usage
        self.env_credentials = EnvCredentials.from_env(self.env)
        # With env credentials the token lives only in this process (nothing to the keyring).
        self._halext_secrets: CredentialStore = (
            MemorySecretStore() if self.env_credentials else self.secrets
        )

    # The routes are built on first use: a command that contacts no host (usage,
    # conversations, export) never imports the backends (ollama, httpx: ~0.4 s). The window
    # builds them on its core-start thread (``build_routes``), not on the GUI thread.

    @functools.cached_property
    def router(self) -> Router:
        return Router(
            self.build_backends(),
            self.policy,
            self.usage,
            fallbacks=self.fallback_refs,
        )

    @functools.cached_property
    def turns(self) -> Turns:
        return Turns(
            self.router,
            self.conversations,
            self.storage.replies,
            writer=self.storage.session.id,
            max_reply_bytes=lambda: self.settings.max_reply_bytes,
        )

    def build_routes(self) -> Core:
        """Build the router and the turns now (the window's core-start thread)."""
        _ = self.turns
        return self

    def wait_open(self, timeout: float | None = 60) -> OpenReport:
        """Wait until the database is open (a command's start).

        Raises:
            DatabaseError: it could not be opened; the message says why and what to do.
        """
        return self.storage.wait_open(timeout)

    # ---- policy and settings ----------------------------------------------------------

    def policy(self) -> Policy:
        return Policy(disable_cloud=self.settings.disable_cloud, offline=self.settings.offline)

    def fallback_refs(self) -> list[ModelRef]:
        refs = []
        for text in self.settings.fallback_models:
            try:
                refs.append(ModelRef.parse(text))
            except ModelRefError:
                log.warning("ignoring bad fallback model %r", text)
        return refs

    def plain_http_ok(self, url: str) -> bool:
        """Whether credentials may go to ``url`` (only asked of plain-http addresses of
        other machines): accepted by the user, or this is the command line (it warns)."""
        if self._plain_http == PLAIN_HTTP_WARN:
            return True
        from halext_desktop.routing.backends.http_guard import plain_http_key

        return plain_http_key(url) in self.settings.plain_http_ok

    def ollama_key(self, name: str, url: str, *, env_host: bool) -> str | None:
        """The API key of one Ollama host: ``OLLAMA_API_KEY`` for the host ``OLLAMA_HOST``
        names (the ollama tools' convention), else the keyring's ``ollama-key:<name>``.
        Never another host's key."""
        if env_host and self.env.get("OLLAMA_API_KEY"):
            return self.env["OLLAMA_API_KEY"]
        try:
            return self.secrets.get(OLLAMA_KEY_PREFIX + name)
        except Exception:  # a broken keyring means "no key", not a crash
            log.warning("could not read the API key of the Ollama host %s", name)
            return None

    def openai_key(self, name: str) -> str | None:
        """The API key of the OpenAI-compatible endpoint ``name`` (keyring ``openai-key:``)."""
        try:
            return self.secrets.get(OPENAI_KEY_PREFIX + name)
        except Exception:  # a broken keyring means "no key", not a crash
            log.warning("could not read the API key of the endpoint %s", name)
            return None

    def _ollama_env_url(self) -> str:
        from halext_desktop.routing.backends.ollama_backend import normalize_ollama_url

        # The host OLLAMA_API_KEY belongs to: OLLAMA_HOST's (the ollama tools' convention),
        # the default address when it is unset, or malformed and so ignored.
        return normalize_ollama_url(self.settings.env_ollama_url() or DEFAULT_OLLAMA_URL)

    def build_backends(self) -> dict[str, Backend]:
        """One backend per configured route. Constructing a backend does no I/O."""
        from halext_desktop.routing.backends.halext import HalextBackend
        from halext_desktop.routing.backends.ollama_backend import (
            OllamaBackend,
            normalize_ollama_url,
        )

        backends: dict[str, Backend] = {}
        url = self.settings.effective_halext_url()
        if url:
            creds = self.env_credentials
            halext = HalextBackend(
                url,
                self._halext_secrets,
                username=creds.username if creds else self.settings.halext_username,
                remember=self.settings.halext_remember,
                session_password=creds.password if creds else None,
                plain_http_ok=functools.partial(self.plain_http_ok, url),
            )
            backends[halext.route_id] = halext
        env_url = self._ollama_env_url()
        for i, host in enumerate(self.settings.effective_ollama_hosts()):
            ollama = OllamaBackend(
                host.name,
                host.url,
                is_default=(i == 0),
                # Read at the host's first request: a command that talks to no host (usage,
                # conversations) never asks the keyring.
                api_key=functools.partial(
                    self.ollama_key,
                    host.name,
                    host.url,
                    env_host=normalize_ollama_url(host.url) == env_url,
                ),
                plain_http_ok=self.plain_http_ok(host.url),
            )
            backends[ollama.route_id] = ollama
        if self.settings.openai_endpoints:
            # Imported only when used: the openai package alone adds ~0.5 s to start-up.
            from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
        for ep in self.settings.openai_endpoints:
            oa = OpenAICompatBackend(
                ep.name,
                ep.url,
                functools.partial(self.openai_key, ep.name),
                plain_http_ok=self.plain_http_ok(ep.url),
            )
            backends[oa.route_id] = oa
        return backends

    def plain_http_warnings(self, *, signing_in: bool = False) -> list[str]:
        """One line per credential this process would send over plain http to another
        machine: what the command line prints on stderr before it contacts anyone."""
        from halext_desktop.routing.backends.http_guard import plain_http_key
        from halext_desktop.routing.backends.ollama_backend import OllamaBackend

        lines: list[str] = []
        halext = self.halext()
        if (
            halext is not None
            and halext.plain_http
            and not self.settings.offline
            and (signing_in or halext.may_poll())
        ):
            lines.append(
                f"warning: your halext password and token go unencrypted over plain http:// "
                f"to {plain_http_key(halext.base_url)}; use https:// unless you trust every "
                "network in between"
            )
        for backend in self.router.backends.values():
            # plain_http first: a key is read only for a host it could cross plain http to.
            if isinstance(backend, OllamaBackend) and backend.plain_http and backend.has_key:
                lines.append(
                    f"warning: the API key of the Ollama host {backend.name!r} goes "
                    f"unencrypted over plain http:// to {backend.netloc}"
                )
        if self.settings.openai_endpoints and not self.settings.offline:
            from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend

            for backend in self.router.backends.values():
                if (
                    isinstance(backend, OpenAICompatBackend)
                    and backend.plain_http
                    and backend.has_key
                ):
                    lines.append(
                        f"warning: the API key of the endpoint {backend.route_id} goes "
                        f"unencrypted over plain http:// to {backend.netloc}"
                    )
        return lines

    async def rebuild_backends(self) -> None:
        """Called on the loop thread after a route setting changed."""
        await self.router.set_backends(self.build_backends())

    def halext(self) -> HalextBackend | None:
        from halext_desktop.routing.backends.halext import HalextBackend

        b = self.router.backend("halext")
        return b if isinstance(b, HalextBackend) else None

    # ---- Services ---------------------------------------------------------------------

    def signed_in_user(self) -> str | None:
        h = self.halext()
        return h.signed_in_user() if h else None

    async def sign_in(self, username: str, password: str, remember: bool) -> str:
        if self.settings.offline:
            raise RouteError(
                ErrorKind.BLOCKED,
                "Offline mode is on: halext is not contacted",
                "Turn off “Offline — local models only” in Settings → AI to sign in",
            )
        h = self.halext()
        if h is None:
            raise RouteError(ErrorKind.NOT_CONFIGURED, "No halext server URL is configured")
        user = await h.login(username, password, remember=remember)
        if self.settings.halext_username != username:
            self.settings.set("halext_username", username)
        if self.settings.halext_remember != remember:
            self.settings.set("halext_remember", remember)
        return user

    async def sign_out(self) -> None:
        h = self.halext()
        if h is not None:
            await h.logout()

    async def list_models(self) -> ModelListing:
        return await self.router.list_models()

    def database_path(self) -> Path:
        return self.db.path

    def routes(self) -> list[RouteInfo]:
        from halext_desktop.routing.route_check import RouteInfo

        return [RouteInfo.of(b) for b in self.router.backends.values()]

    def _contactable(self, route_id: str) -> Backend:
        """The backend of ``route_id`` when policy allows contacting it; else RouteError."""
        backend = self.router.backend(route_id)
        if backend is None:
            raise RouteError(
                ErrorKind.NOT_CONFIGURED,
                f"No route {route_id} is configured",
                "Add it in Settings → Connections",
                route_id=route_id,
            )
        reason = self.policy().route_allowed(backend.kind)
        if reason:
            raise RouteError(ErrorKind.BLOCKED, f"{route_id} was not contacted: {reason}")
        return backend

    async def check_route(self, route_id: str) -> RouteCheck:
        from halext_desktop.routing.route_check import check_route

        return await check_route(self._contactable(route_id))

    async def route_models(self, route_id: str) -> list[ModelInfo]:
        from halext_desktop.routing.route_check import route_models

        return await route_models(self._contactable(route_id))

    async def health_all(self) -> list[Health]:
        return await self.router.health_all()

    async def test_ollama(self, url: str) -> Health:
        from halext_desktop.routing.backends.ollama_backend import OllamaBackend

        # No key: a Test of an address typed in must not carry any configured host's key.
        backend = OllamaBackend("test", url, is_default=False)
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    async def test_openai(self, name: str, url: str, api_key: str | None) -> Health:
        from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend

        backend = OpenAICompatBackend(name, url, api_key, plain_http_ok=self.plain_http_ok(url))
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    # ---- model management ---------------------------------------------------------------

    def ollama_models(self, route_id: str) -> OllamaModels:
        """Model management on an Ollama route that policy allows contacting."""
        return ollama_models_of(self._contactable(route_id), route_id)

    async def model_card(self, route_id: str, model: str) -> ModelCard:
        return await self.ollama_models(route_id).show(model)

    def pull_model(self, route_id: str, model: str) -> AsyncIterator[PullProgress]:
        return pull_under_policy(self.ollama_models, self.policy, route_id, model)

    async def delete_model(self, route_id: str, model: str) -> int | None:
        return await self.ollama_models(route_id).delete(model)

    async def loaded_models(self, route_id: str) -> list[LoadedModel]:
        return await self.ollama_models(route_id).loaded()

    async def unload_model(self, route_id: str, model: str) -> None:
        await self.ollama_models(route_id).unload(model)

    def halext_admin(self) -> HalextAdmin:
        """The halext server's node routes (policy permitting); RouteError when there is none."""
        from halext_desktop.routing.backends.halext import HalextBackend
        from halext_desktop.routing.backends.halext_admin import HalextAdmin

        backend = self._contactable("halext")
        assert isinstance(backend, HalextBackend)
        return HalextAdmin(backend)

    async def admin_nodes(self) -> AdminNodeList | None:
        h = self.halext()
        if h is None or self.policy().route_allowed(h.kind) or not h.signed_in_user():
            return None
        from halext_desktop.routing.backends.halext_admin import HalextAdmin
        from halext_desktop.routing.route_check import whoami_is_admin

        if not await whoami_is_admin(h):
            return None
        return await HalextAdmin(h).nodes()

    async def node_test(self, node_id: int) -> NodeTest:
        return await self.halext_admin().test(node_id)

    async def node_models(self, node_id: int) -> list[str]:
        return await self.halext_admin().models(node_id)

    async def node_info(self, node_id: int) -> NodeInfo:
        return await self.halext_admin().info(node_id)

    async def node_pull(self, node_id: int, model: str) -> NodeAction:
        return await self.halext_admin().pull(node_id, model)

    async def node_delete(self, node_id: int, model: str) -> NodeAction:
        return await self.halext_admin().delete(node_id, model)

    async def aclose(self) -> None:
        """Close every HTTP client. Backends make new ones at their next request, because
        clients are bound to the event loop that used them and the CLI and tests run
        several ``asyncio.run`` calls over one Core (nothing is rebuilt: a command's exit
        costs no new backends, nor a keyring read). Routes never built have none."""
        if "router" in self.__dict__:
            await self.router.aclose()

    async def interrupt_replies(self, timeout: float = 5.0) -> int:
        """Stop every reply in flight as ``interrupted`` and wait (up to ``timeout``) until
        each one's text and state are queued for the database; returns how many. For
        SIGTERM/SIGHUP and closing the window mid-reply."""
        import asyncio

        if "turns" not in self.__dict__:
            return 0  # no turn was ever started
        replies = self.turns.interrupt_all()
        if replies:
            await asyncio.gather(
                *(asyncio.to_thread(r.finished.wait, timeout) for r in replies),
                return_exceptions=True,
            )
        return len(replies)

    def close(self, timeout: float = 2.0) -> CloseReport:
        """Write what waits for the database (for up to ``timeout``); what still cannot be
        written is kept in the spool file for the next start. Safe to call twice."""
        return self.storage.close(timeout)

    # ---- helpers for front ends --------------------------------------------------------

    def resolve_default(self, listing: ModelListing | None) -> ModelRef | None:
        try:
            return self.resolve_model(None, listing)
        except (RouteError, ModelRefError):
            return None

    def resolve_model(self, text: str | None, listing: ModelListing | None = None) -> ModelRef:
        """The reference to use: explicit text, else the default setting, else the first
        allowed local model of ``listing``. Raises RouteError with a hint when none; when
        the routes could not be asked (Ollama down, signed out) the hint says that first."""
        if text:
            return ModelRef.parse(text)  # ModelRefError (a ValueError) says what is allowed
        if self.settings.default_model:
            return ModelRef.parse(self.settings.default_model)
        if listing is not None:
            pick = first_allowed(listing.models, self.router)
            if pick is not None:
                return pick.ref
            if listing.errors:
                causes = "; ".join(
                    f"{rid}: {err.one_line()}" for rid, err in listing.errors.items()
                )
                raise RouteError(
                    ErrorKind.NOT_CONFIGURED,
                    f"No model to answer: no route could list its models ({causes})",
                    "Fix that, or pass --model / set default_model "
                    "(`halext-desktop config set default_model ollama/<name>`)",
                )
        raise RouteError(
            ErrorKind.NOT_CONFIGURED,
            "No model chosen and no default model set",
            "Pass --model (see `halext-desktop models`) or set one with "
            "`halext-desktop config set default_model ollama/<name>`. " + CONNECT_HINT,
        )


def ollama_models_of(backend: Backend, route_id: str) -> OllamaModels:
    """Model management for ``backend``; BAD_REQUEST when it is not an Ollama host."""
    from halext_desktop.routing.backends.ollama_backend import OllamaBackend

    if not isinstance(backend, OllamaBackend):
        raise RouteError(
            ErrorKind.BAD_REQUEST,
            f"{route_id} is not an Ollama host: models are managed on Ollama hosts "
            "(and, for halext admins, on the server's nodes)",
            "Use an ollama/… or ollama@<host>/… reference",
            route_id=route_id,
        )
    from halext_desktop.routing.backends.ollama_models import OllamaModels

    return OllamaModels(backend)


async def pull_under_policy(
    models_of: Callable[[str], OllamaModels],
    policy: Callable[[], Policy],
    route_id: str,
    model: str,
) -> AsyncIterator[PullProgress]:
    """Pull ``model`` on ``route_id``: nothing is contacted before the first ``next()``, and
    an Ollama cloud model is refused while cloud providers are disabled (pulling it would
    only register a model whose chats go to ollama.com)."""
    models = models_of(route_id)
    if policy().disable_cloud and models.backend.locality_of(model) is Locality.CLOUD:
        raise RouteError(
            ErrorKind.BLOCKED,
            f"{model} is an Ollama cloud model: {CLOUD_REASON}",
            "Pick a model that runs on your machine, or change this in Settings → AI",
            route_id=route_id,
        )
    async for progress in models.pull(model):
        yield progress


def first_allowed(models: list[ModelInfo], router: Router) -> ModelInfo | None:
    """Local first, then self-hosted, then cloud — skipping what policy refuses."""
    order = {"local": 0, "self-hosted": 1, "cloud": 2}
    for info in sorted(models, key=lambda m: order.get(m.locality.value, 3)):
        if info.available and info.can_chat and router.refusal(info.ref) is None:
            return info
    return None


if TYPE_CHECKING:
    # mypy proves here that Core keeps the whole contract the widgets are written against.
    _core_is_services: type[Services] = Core
