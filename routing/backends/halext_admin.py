"""The halext server's AI client nodes, managed as its admin page does (halext-api.md §9).

Routes (admin token; others get 403): ``GET /admin/ai-clients`` (the list),
``POST /admin/ai-clients/{id}/test``, ``GET …/models``, ``GET …/info``,
``POST …/pull-model`` and ``…/delete-model`` with ``{"model_name"}``.

What the server gets wrong at upstream a689c6c, and what this module does about it:

- The list answers a plain-text 500 once any node has ``last_seen_at`` (which a successful
  test sets). Then the nodes are rebuilt from what ``GET /ai/models`` says of client nodes
  (``node_id``, ``node_name``, ``endpoint``, ``latency_ms``), with a note that nodes the
  server considers offline are missing.
- ``pull-model`` reads the node's whole pull stream and gives no progress; an unknown model
  fails *inside* Ollama's 200 stream, so the server calls it a success ("Started pulling …").
  After a pull the node is tested (which refreshes the server's cached model list) and the
  model looked for, so "success" is only said when the node really has it.
- ``…/models`` answers from the server's cache (refreshed by a test), so a delete is
  followed by a test too.
- Errors from the node come back as ``400 {"detail": "<httpx's text>"}``: they are turned
  into one clear line (not installed, not a valid name, node unreachable).

No redirect is followed (the backend's client does not): a 3xx names its Location.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.http_errors import one_line
from halext_desktop.routing.errors import ErrorKind, RouteError

ROUTE_ID = "halext"
# The server's own timeouts (ai_client_manager.py) plus a margin: 10 s for a test or a
# listing, 30 s for a delete, 300 s for a pull it reads to the end before answering.
NODE_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
DELETE_TIMEOUT = httpx.Timeout(45.0, connect=5.0)
PULL_TIMEOUT = httpx.Timeout(330.0, connect=5.0)

LIST_FALLBACK_NOTE = (
    "The server failed to list its AI client nodes (HTTP {status}, a known halext bug once a "
    "node has been seen); these are the nodes /ai/models reports — offline ones are missing"
)
NO_PROGRESS_NOTE = "halext gives no progress for pulls on a node: it answers when the pull ends"

_STATUS_ERROR_RE = re.compile(r"'(\d{3}) [^']*' for url '([^']*)'")


@dataclass(frozen=True, slots=True)
class AdminNode:
    """One AI client node (a self-hosted Ollama the halext server routes ``client:<id>:`` to).

    Attributes:
        status: ``online``/``offline``/``timeout``/``error``/``unknown``, or ``listed`` for a
            node known only from ``/ai/models`` (the server lists only reachable ones there).
        models: what the server last saw on the node.
        raw: the server's record (empty for a node rebuilt from ``/ai/models``).
    """

    id: int
    name: str
    base_url: str = ""
    node_type: str = "ollama"
    status: str = "unknown"
    last_seen_at: str | None = None
    models: tuple[str, ...] = ()
    latency_ms: int | None = None
    is_active: bool | None = None
    is_public: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} (node {self.id})"

    def ref_of(self, model: str) -> str:
        """The reference a chat or ``--model`` takes: ``halext/client:3:qwen2.5:7b``."""
        return f"halext/client:{self.id}:{model}"


@dataclass(frozen=True, slots=True)
class AdminNodeList:
    """The nodes, and (when they are incomplete) why."""

    nodes: list[AdminNode]
    note: str | None = None
    from_models: bool = False  # rebuilt from /ai/models because the list endpoint failed


@dataclass(frozen=True, slots=True)
class NodeTest:
    """``POST …/test``: the server asked the node just now."""

    node_id: int
    online: bool
    status: str
    message: str | None = None
    models: tuple[str, ...] = ()
    response_time_ms: int | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """``GET …/info``: the node's Ollama version and models, as the server sees them."""

    node_id: int
    version: str
    models: tuple[str, ...]
    node_type: str
    url: str


@dataclass(frozen=True, slots=True)
class NodeAction:
    """What a pull or delete on a node did.

    Attributes:
        message: one line for the user ("Pulled tinyllama:latest on node 3").
        models: the node's models after it, when the follow-up test could ask the node.
        note: what could not be known (no progress; the node could not be re-checked).
    """

    node_id: int
    model: str
    message: str
    models: tuple[str, ...] | None = None
    note: str = ""


def parse_node_model(model_id: str) -> tuple[int, str]:
    """``client:3:qwen2.5:7b`` → ``(3, "qwen2.5:7b")``; RouteError when it names no node."""
    prefix, _, rest = model_id.partition(":")
    node, _, model = rest.partition(":")
    if prefix != "client" or not node.isdigit() or not model:
        raise RouteError(
            ErrorKind.BAD_REQUEST,
            f"'{model_id}' does not name a halext node's model",
            "Use halext/client:<node id>:<model>, e.g. halext/client:3:qwen2.5:7b",
            route_id=ROUTE_ID,
        )
    return int(node), model


def _full(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _node_from_record(rec: dict[str, Any]) -> AdminNode | None:
    node_id = _int(rec.get("id"))
    if node_id is None:
        return None
    caps = rec.get("capabilities") if isinstance(rec.get("capabilities"), dict) else {}
    models = caps.get("models") if isinstance(caps, dict) else None
    seen = rec.get("last_seen_at")
    return AdminNode(
        id=node_id,
        name=str(rec.get("name") or f"node {node_id}"),
        base_url=str(rec.get("base_url") or ""),
        node_type=str(rec.get("node_type") or "ollama"),
        status=str(rec.get("status") or "unknown"),
        last_seen_at=seen if isinstance(seen, str) else None,
        models=tuple(str(m) for m in models) if isinstance(models, list) else (),
        latency_ms=_int(caps.get("last_response_time_ms")) if isinstance(caps, dict) else None,
        is_active=rec.get("is_active") if isinstance(rec.get("is_active"), bool) else None,
        is_public=rec.get("is_public") if isinstance(rec.get("is_public"), bool) else None,
        raw=rec,
    )


class HalextAdmin:
    """The admin node routes of one halext server, through its backend's signed-in client.

    Args:
        backend: the halext route (its token, re-login and error wording).
    """

    def __init__(self, backend: HalextBackend) -> None:
        self.backend = backend

    # ---- plumbing -----------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: httpx.Timeout = NODE_TIMEOUT,
        node_id: int | None = None,
        model: str | None = None,
    ) -> Any:
        """The JSON of a 200 answer; any other answer is a RouteError that says what it means."""
        try:
            resp = await self.backend.authed_request(
                method, path, json_body=json_body, timeout=timeout
            )
        except RouteError as err:
            if err.kind is ErrorKind.TIMEOUT and node_id is not None:
                raise RouteError(
                    ErrorKind.TIMEOUT,
                    f"halext did not answer for node {node_id} in time ({err.message})",
                    "The node may be slow or a large pull still running; check it again later",
                    route_id=ROUTE_ID,
                ) from None
            raise
        if resp.status_code == 200:
            try:
                return resp.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RouteError(
                    ErrorKind.SERVER,
                    f"halext answered {path} with something that is not JSON",
                    "Check that the server URL points at the halext API (it ends in /api)",
                    status=200,
                    route_id=ROUTE_ID,
                ) from None
        raise self._error(resp, path, node_id, model)

    def _error(
        self, resp: httpx.Response, path: str, node_id: int | None, model: str | None
    ) -> RouteError:
        status = resp.status_code
        detail = _detail(resp)
        node = f"node {node_id}" if node_id is not None else "the node"

        def err(kind: ErrorKind, message: str, hint: str = "") -> RouteError:
            return RouteError(kind, message, hint, status=status, route_id=ROUTE_ID)

        if 300 <= status < 400:
            location = resp.headers.get("location") or "(no Location header)"
            return err(
                ErrorKind.BAD_REQUEST,
                f"halext redirected {path} to {location} (HTTP {status}); redirects are not "
                "followed",
                "Check the server URL in Settings (it should end in /api)",
            )
        if status == 403:
            return err(
                ErrorKind.BLOCKED,
                f"Only halext admins can manage AI client nodes ({detail or 'forbidden'})",
                "Sign in as an admin of this server",
            )
        if status == 404 and detail == "Client not found":
            return err(
                ErrorKind.NOT_CONFIGURED,
                f"The halext server has no {node} (Client not found)",
                "Refresh the node list: it may have been removed",
            )
        if status == 400 and detail:
            return self._node_failure(status, detail, node, model)
        if status == 422:
            return err(ErrorKind.BAD_REQUEST, f"halext rejected the request to {path}: {detail}")
        if status >= 500:
            text = detail or _text(resp)
            return err(
                ErrorKind.SERVER,
                f"halext server error {status} on {path}: {text}",
                "Try again; if it repeats, the server's log says why",
            )
        return err(
            ErrorKind.BAD_REQUEST,
            f"halext refused {path} (HTTP {status}): {detail or _text(resp)}",
        )

    def _node_failure(self, status: int, detail: str, node: str, model: str | None) -> RouteError:
        """A ``400 {"detail"}`` from pull-model/delete-model: the node's own failure."""
        name = f"'{model}'" if model else "the model"

        def err(kind: ErrorKind, message: str, hint: str = "") -> RouteError:
            return RouteError(kind, message, hint, status=status, route_id=ROUTE_ID)

        match = _STATUS_ERROR_RE.search(detail)
        if match:
            code, url = int(match.group(1)), match.group(2)
            if code == 404:
                return err(
                    ErrorKind.MODEL_NOT_FOUND,
                    f"{node.capitalize()} has no model {name} (its Ollama at {url} answered 404)",
                    "Refresh the node's models: it may have been deleted already",
                )
            if code == 400:
                return err(
                    ErrorKind.BAD_REQUEST,
                    f"{name} is not a valid model name (the Ollama of {node} refused it)",
                    "Names look like llama3.2 or qwen2.5:7b",
                )
            return err(
                ErrorKind.SERVER,
                f"The Ollama of {node} answered HTTP {code} ({url})",
                "Check that node's Ollama log",
            )
        if "only ollama nodes" in detail.lower():
            return err(
                ErrorKind.BAD_REQUEST, f"{node.capitalize()} is not an Ollama node: {detail}"
            )
        low = detail.lower()
        if "connection" in low or "connect" in low or "timed out" in low or "timeout" in low:
            return err(
                ErrorKind.CONNECTION,
                f"halext could not reach {node} ({one_line(detail)})",
                "Is Ollama running there, listening on the network (OLLAMA_HOST=0.0.0.0)?",
            )
        return err(ErrorKind.SERVER, f"{node.capitalize()} failed: {one_line(detail)}")

    # ---- nodes --------------------------------------------------------------------------------

    async def nodes(self) -> AdminNodeList:
        """Every node; when the list endpoint fails (the known 500), the nodes ``/ai/models``
        reports, with a note. Raises RouteError for anything else (403 for a non-admin)."""
        try:
            data = await self._request("GET", "/admin/ai-clients")
        except RouteError as err:
            if err.status is None or err.status < 500:
                raise
            return await self._nodes_from_models(err.status)
        if not isinstance(data, list):
            raise RouteError(
                ErrorKind.SERVER,
                "halext's AI client list has an unexpected shape",
                route_id=ROUTE_ID,
            )
        nodes = [n for rec in data if isinstance(rec, dict) and (n := _node_from_record(rec))]
        return AdminNodeList(nodes)

    async def _nodes_from_models(self, status: int) -> AdminNodeList:
        data = await self._request("GET", "/ai/models")
        entries = data.get("models") if isinstance(data, dict) else None
        found: dict[int, dict[str, Any]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            node_id = _int(entry.get("node_id"))
            if node_id is None:
                continue
            node = found.setdefault(
                node_id,
                {
                    "name": entry.get("node_name") or f"node {node_id}",
                    "endpoint": entry.get("endpoint") or "",
                    "latency": _int(entry.get("latency_ms")),
                    "models": [],
                },
            )
            name = entry.get("name")
            if isinstance(name, str) and name not in node["models"]:
                node["models"].append(name)
        nodes = [
            AdminNode(
                id=node_id,
                name=str(info["name"]),
                base_url=str(info["endpoint"]),
                status="listed",
                models=tuple(info["models"]),
                latency_ms=info["latency"],
            )
            for node_id, info in sorted(found.items())
        ]
        return AdminNodeList(nodes, LIST_FALLBACK_NOTE.format(status=status), from_models=True)

    async def test(self, node_id: int) -> NodeTest:
        """Ask the server to check the node now (it refreshes its cached model list)."""
        data = await self._request("POST", f"/admin/ai-clients/{node_id}/test", node_id=node_id)
        if not isinstance(data, dict):
            raise _shape("node test")
        models = data.get("models")
        return NodeTest(
            node_id=node_id,
            online=data.get("online") is True,
            status=str(data.get("status") or "unknown"),
            message=data.get("message") if isinstance(data.get("message"), str) else None,
            models=tuple(str(m) for m in models) if isinstance(models, list) else (),
            response_time_ms=_int(data.get("response_time_ms")),
        )

    async def models(self, node_id: int) -> list[str]:
        """The node's models as the server knows them (its cache, refreshed by a test)."""
        data = await self._request("GET", f"/admin/ai-clients/{node_id}/models", node_id=node_id)
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise _shape("node model list")
        return [str(m) for m in models]

    async def info(self, node_id: int) -> NodeInfo:
        """The node's Ollama version and models; the server reports a failure as
        ``{"error"}`` with 200, which becomes a RouteError here."""
        data = await self._request("GET", f"/admin/ai-clients/{node_id}/info", node_id=node_id)
        if not isinstance(data, dict):
            raise _shape("node info")
        if isinstance(data.get("error"), str):
            raise self._node_failure(200, data["error"], f"node {node_id}", None)
        if not data:
            raise RouteError(
                ErrorKind.BAD_REQUEST,
                f"halext has no details for node {node_id} (only Ollama nodes have them)",
                route_id=ROUTE_ID,
            )
        models = data.get("models")
        return NodeInfo(
            node_id=node_id,
            version=str(data.get("version") or "unknown"),
            models=tuple(str(m) for m in models) if isinstance(models, list) else (),
            node_type=str(data.get("type") or ""),
            url=str(data.get("url") or ""),
        )

    async def pull(self, node_id: int, model: str) -> NodeAction:
        """Pull ``model`` on the node and check that it is there afterwards."""
        name = _checked_name(model)
        await self._request(
            "POST",
            f"/admin/ai-clients/{node_id}/pull-model",
            json_body={"model_name": name},
            timeout=PULL_TIMEOUT,
            node_id=node_id,
            model=name,
        )
        fresh = await self._recheck(node_id)
        if fresh is None:
            return NodeAction(
                node_id,
                name,
                f"halext says it pulled {name} on node {node_id}",
                None,
                "The node could not be checked afterwards, so this is not confirmed",
            )
        if _full(name) not in {_full(m) for m in fresh}:
            raise RouteError(
                ErrorKind.MODEL_NOT_FOUND,
                f"halext reported success, but node {node_id} does not have '{name}': the "
                "name is probably wrong (the server does not pass on Ollama's pull errors)",
                "Check the name and tag on ollama.com/library",
                route_id=ROUTE_ID,
            )
        return NodeAction(node_id, name, f"Pulled {_full(name)} on node {node_id}", fresh)

    async def delete(self, node_id: int, model: str) -> NodeAction:
        """Delete ``model`` from the node, then refresh the server's view of it."""
        name = _checked_name(model)
        await self._request(
            "POST",
            f"/admin/ai-clients/{node_id}/delete-model",
            json_body={"model_name": name},
            timeout=DELETE_TIMEOUT,
            node_id=node_id,
            model=name,
        )
        fresh = await self._recheck(node_id)
        note = "" if fresh is not None else "The node could not be checked afterwards"
        return NodeAction(node_id, name, f"Deleted {name} from node {node_id}", fresh, note)

    async def _recheck(self, node_id: int) -> tuple[str, ...] | None:
        """The node's models from a fresh test; None when the node cannot be asked."""
        try:
            result = await self.test(node_id)
        except RouteError:
            return None
        return result.models if result.online else None


def _checked_name(model: str) -> str:
    name = (model or "").strip()
    if not name or any(c.isspace() for c in name):
        raise RouteError(
            ErrorKind.BAD_REQUEST,
            f"'{model}' is not a valid model name" if name else "No model name was given",
            "Names look like llama3.2 or qwen2.5:7b",
            route_id=ROUTE_ID,
        )
    return name


def _shape(what: str) -> RouteError:
    return RouteError(
        ErrorKind.SERVER, f"halext's {what} has an unexpected shape", route_id=ROUTE_ID
    )


def _detail(resp: httpx.Response) -> str | None:
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    if isinstance(data, dict) and isinstance(data.get("detail"), list) and data["detail"]:
        first = data["detail"][0]
        if isinstance(first, dict):
            return str(first.get("msg") or "invalid request")
    return None


def _text(resp: httpx.Response) -> str:
    text = resp.text.strip()
    return one_line(text.splitlines()[0]) if text else (resp.reason_phrase or "empty response")
