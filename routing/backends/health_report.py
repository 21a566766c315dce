"""How the Ollama and OpenAI-compatible backends report a health check.

Both say the same thing in the same words: ``<server> · 7 models · 4 ms`` when the server
answered, or the failure's one line (message and hint) when it did not.
"""

from __future__ import annotations

from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.types import Health


def healthy(
    route_id: str, label: str, count: int, latency_ms: int, *, version: str | None = None
) -> Health:
    """A passed check: ``label`` names the server (``Ollama 0.12.3``), ``count`` its models."""
    noun = "model" if count == 1 else "models"
    return Health(
        route_id=route_id,
        ok=True,
        latency_ms=latency_ms,
        version=version,
        model_count=count,
        detail=f"{label} · {count} {noun} · {latency_ms} ms",
    )


def unhealthy(route_id: str, err: RouteError) -> Health:
    """A failed check, described by the RouteError the backend translated the failure into."""
    return Health(route_id=route_id, ok=False, detail=err.one_line())
