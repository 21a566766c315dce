"""Text the front ends show about a route or a model, in one place so the GUI chip,
the CLI and the tests agree. No Qt here.

A host has one name everywhere: the name it was given in the settings (``local``,
``studio``, ``groq``), ``halext`` for the halext server. The default Ollama host's route id
is ``ollama`` whatever its name, so its name comes from the settings (``names``); without
them, ``local`` stands for it when it is on this machine.
"""

from __future__ import annotations

from collections.abc import Mapping

from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Locality

RouteNames = Mapping[str, str]


def route_name(route_id: str, names: RouteNames | None = None) -> str:
    """The name a route is shown by: ``names[route_id]`` when given, else the host part of
    the id (``ollama@studio`` → ``studio``), ``halext``, or the id itself."""
    if names and route_id in names:
        return names[route_id]
    _kind, _sep, host = route_id.partition("@")
    return host or route_id


def route_title(route_id: str, names: RouteNames | None = None) -> str:
    """The route's name with what it is, where a list mixes kinds: ``Ollama local``,
    ``groq (OpenAI-compatible)``, ``halext``."""
    name = route_name(route_id, names)
    kind = route_id.partition("@")[0]
    if kind == "ollama":
        return f"Ollama {name}"
    if kind == "openai":
        return f"{name} (OpenAI-compatible)"
    return name


def route_label(ref: ModelRef, locality: Locality, names: RouteNames | None = None) -> str:
    """The route's name: ``halext``, the host's name (``local``, ``studio``)."""
    if names and ref.route_id in names:
        return names[ref.route_id]
    if ref.kind == "halext":
        return "halext"
    if ref.host:
        return ref.host
    if ref.kind == "ollama":
        return "local" if locality is Locality.LOCAL else "ollama"
    return "openai"


def chip_label(answered: ModelRef, locality: Locality, names: RouteNames | None = None) -> str:
    """The reply chip: ``AI • openai:gpt-4o-mini · halext``, ``AI • llama3.1:8b · local``."""
    return f"AI • {answered.model} · {route_label(answered, locality, names)}"


def not_sent_label(reason: str) -> str:
    """The chip of a reply refused before anything was sent:
    ``Not sent — cloud providers are disabled``."""
    return f"Not sent — {reason}"


def failed_label(route_id: str) -> str:
    """The chip of a reply no model gave because its route failed: ``Failed — halext``."""
    return f"Failed — {route_id}"
