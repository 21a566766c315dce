"""Classify a server address as this machine, a private network, or the internet.

Why: "cloud" is decided by where the text goes. An OpenAI-compatible endpoint on
127.0.0.1 (llama.cpp, LM Studio, Ollama's /v1) is local; one on 192.168.x is the
user's own server; anything else is a third party.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from halext_desktop.routing.types import Locality

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def host_of(url: str) -> str:
    """The host part of a URL (lower-case, without brackets); "" when there is none."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return (parts.hostname or "").lower()


def is_loopback_url(url: str) -> bool:
    host = host_of(url)
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def classify_url(url: str) -> Locality:
    """LOCAL for loopback, SELF_HOSTED for private/link-local/.local/.lan names, else CLOUD."""
    if is_loopback_url(url):
        return Locality.LOCAL
    host = host_of(url)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # A bare name without dots, or an mDNS/LAN suffix, is on the user's network.
        if host and (
            "." not in host or host.endswith((".local", ".lan", ".home.arpa", ".internal"))
        ):
            return Locality.SELF_HOSTED
        return Locality.CLOUD
    if ip.is_private or ip.is_link_local:
        return Locality.SELF_HOSTED
    return Locality.CLOUD
