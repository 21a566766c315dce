"""Text the front ends show about a route or a model, in one place so the GUI chip,
the CLI and the tests agree. No Qt here."""

from __future__ import annotations

from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Locality


def route_label(ref: ModelRef, locality: Locality) -> str:
    """``halext``, ``local`` (the default Ollama host on this machine), or the host name."""
    if ref.kind == "halext":
        return "halext"
    if ref.host:
        return ref.host
    if ref.kind == "ollama":
        return "local" if locality is Locality.LOCAL else "ollama"
    return "openai"


def chip_label(answered: ModelRef, locality: Locality) -> str:
    """The reply chip: ``AI • openai:gpt-4o-mini · halext``, ``AI • llama3.1:8b · local``."""
    return f"AI • {answered.model} · {route_label(answered, locality)}"


def not_sent_label(reason: str) -> str:
    """The chip of a reply refused before anything was sent:
    ``Not sent — cloud providers are disabled``."""
    return f"Not sent — {reason}"


def failed_label(route_id: str) -> str:
    """The chip of a reply no model gave because its route failed: ``Failed — halext``."""
    return f"Failed — {route_id}"
