"""The offline guard: with ``offline: true`` only loopback endpoints (or hosts in ``allow_hosts``) may be called.

Fabs must be able to show that wafer data never left the building, so the check runs when a backend is built,
before any traffic, and refuses with a message that says how to allow a host on purpose.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .config import ModelConfigError, redact

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class OfflineError(ModelConfigError):
    """An endpoint outside this machine was refused because the run is offline."""


def endpoint_host(url: str) -> str:
    """The host of a URL, lower-cased, without brackets or port ('' when the URL has none)."""
    return (urlsplit(url).hostname or "").lower()


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8, ``::1`` and IPv4-mapped loopback addresses."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def check_endpoint(url: str, *, allow_hosts: list[str], where: str) -> None:
    """Raise :class:`OfflineError` unless ``url`` points at loopback or at a host in ``allow_hosts``."""
    host = endpoint_host(url)
    allowed = {h.strip("[]").lower() for h in allow_hosts}
    if host and (is_loopback(host) or host in allowed):
        return
    shown = host or redact(url)
    raise OfflineError(
        f"{where}: offline mode refuses endpoint {redact(url)!r} (host {shown!r} is not loopback and not in "
        f"allow_hosts). Nothing was sent. To allow it on purpose add it to the model config: allow_hosts: [{shown}] "
        f"- or run without offline mode."
    )
