"""Model references: one string that names the route and the model, and round-trips.

Form: ``<route>/<model id>``, split at the **first** ``/``. The route is a kind
(``halext``, ``ollama``, ``openai``) optionally followed by ``@<host name>``:

    halext/openai:gpt-4o-mini        remote halext API, server routes to OpenAI
    halext/client:3:qwen2.5:7b       remote halext API, a self-hosted node of the server
    ollama/llama3.1:8b               the default (first) configured Ollama host
    ollama@studio/hf.co/org/m:q4     the Ollama host named "studio"
    openai@groq/llama-3.1-8b         the OpenAI-compatible endpoint named "groq"

Model ids keep their colons and slashes untouched: only the first ``/`` is framing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

ROUTE_KINDS: tuple[str, ...] = ("halext", "ollama", "openai")

# A host or endpoint name is what the user typed in settings (``ollama@studio``); keep it
# simple so it never needs escaping. Settings validate names with the same rule.
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
HOST_NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_host_name(name: object) -> TypeGuard[str]:
    """Whether ``name`` can name a configured host or endpoint (see HOST_NAME_RULE)."""
    return isinstance(name, str) and _HOST_RE.match(name) is not None


class ModelRefError(ValueError):
    """A string that is not a valid model reference; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model reference.

    Attributes:
        kind: ``halext``, ``ollama`` or ``openai``.
        host: the configured host/endpoint name, or None for the kind's default.
        model: the provider-side model id, sent to the backend verbatim.
    """

    kind: str
    host: str | None
    model: str

    def __post_init__(self) -> None:
        if self.kind not in ROUTE_KINDS:
            raise ModelRefError(f"unknown route {self.kind!r}: use one of {', '.join(ROUTE_KINDS)}")
        if self.host is not None and not is_host_name(self.host):
            raise ModelRefError(f"bad host name {self.host!r}: {HOST_NAME_RULE}")
        if not self.model or self.model != self.model.strip():
            raise ModelRefError("the model id after the '/' is empty or has surrounding spaces")

    @property
    def route_id(self) -> str:
        """``ollama`` or ``ollama@studio``: the backend this reference goes to."""
        return self.kind if self.host is None else f"{self.kind}@{self.host}"

    def __str__(self) -> str:
        return f"{self.route_id}/{self.model}"

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``<kind>[@host]/<model>``; raises ModelRefError with a clear message."""
        if not isinstance(text, str) or "/" not in text:
            raise ModelRefError(
                f"{text!r} is not a model reference: expected <route>/<model>, "
                "e.g. ollama/llama3.1:8b or halext/openai:gpt-4o-mini"
            )
        route, model = text.split("/", 1)
        kind, sep, host = route.partition("@")
        if sep and not host:
            raise ModelRefError(f"{text!r}: empty host name after '@'")
        return cls(kind=kind, host=host or None, model=model)

    def with_host(self, host: str | None) -> ModelRef:
        return ModelRef(self.kind, host, self.model)


def canonical_model_id(model: str) -> str:
    """A model id as servers resolve it, so equal models compare equal: Ollama's implicit
    ``:latest`` tag made explicit, halext's ``ollama-local:`` alias spelled ``ollama:``."""
    m = model.strip()
    if m.startswith("ollama-local:"):
        m = "ollama:" + m[len("ollama-local:") :]
    last = m.rsplit("/", 1)[-1]
    # A bare Ollama name without a tag means :latest. halext ids carry a provider
    # prefix ("ollama:llama3"), so look at what follows it.
    provider, sep, rest = m.partition(":")
    if sep and provider in {"ollama", "openwebui"} and ":" not in rest:
        return f"{m}:latest"
    if ":" not in last:
        return f"{m}:latest"
    return m
