"""The user's two switches, checked by the router before any I/O.

- Disable cloud providers: refuse every model whose text would reach a third-party hosted
  provider (halext models of source openai/gemini, public OpenAI-compatible endpoints).
- Offline / local only: nothing goes anywhere but the configured Ollama hosts — no chat,
  no model list, no health check to halext or OpenAI-compatible endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Locality

CLOUD_REASON = "cloud providers are disabled in Settings"
OFFLINE_REASON = "offline mode: only the configured Ollama hosts are used"
# The same reasons in a few words, for a reply's chip ("Not sent — ...").
_SHORT = {CLOUD_REASON: "cloud providers are disabled", OFFLINE_REASON: "offline mode"}


def short_reason(reason: str) -> str:
    """A refusal reason in a few words (``cloud providers are disabled``)."""
    return _SHORT.get(reason, reason)


# halext model ids whose server-side provider is a third-party cloud (halext-api.md §4, §11.2).
_HALEXT_CLOUD_PREFIXES = ("openai:", "gemini:")


def halext_model_is_cloud(model_id: str) -> bool:
    """True when a halext model id (``openai:gpt-4o-mini``) routes to a cloud provider."""
    return model_id.lower().startswith(_HALEXT_CLOUD_PREFIXES)


@dataclass(frozen=True, slots=True)
class Policy:
    disable_cloud: bool = False
    offline: bool = False

    def route_allowed(self, kind: str) -> str | None:
        """None when a route kind may be contacted at all, else the reason it may not."""
        if self.offline and kind != "ollama":
            return OFFLINE_REASON
        return None

    def refusal(self, ref: ModelRef, locality: Locality) -> str | None:
        """None when a request for ``ref`` (whose text would go to ``locality``) may be sent,
        else the reason it is refused — shown in the picker and in the error."""
        reason = self.route_allowed(ref.kind)
        if reason:
            return reason
        if self.disable_cloud and locality is Locality.CLOUD:
            return CLOUD_REASON
        return None
