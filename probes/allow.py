"""Which addresses an outbound request chosen by someone outside the NOC may reach (the SSRF guard).

Used by the ad-hoc ``/probe`` endpoint (a staff token picks the target) and by status-page webhooks (a
visitor picks the URL): public addresses always, the others (loopback, private, link-local such as a cloud's
169.254.169.254 metadata service, unique-local, multicast) only inside networks an admin allowed. Pure: no
resolving here; the callers check every address a name resolves to, and connect only to those.
"""

from __future__ import annotations

import ipaddress

__all__ = ["Network", "parse_networks", "target_allowed"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """``"10.0.0.0/8, 127.0.0.0/8"`` as networks; ``ValueError`` naming the part that is not one."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not a network like 10.0.0.0/8") from None
    return out


def target_allowed(address: str, allowed: list) -> bool:
    """A public unicast address, or any address inside ``allowed``: a token or a visitor must not turn the
    monitor into a way into the company's own network. ``address`` is an IP literal (``ValueError`` if not)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed):
        return True
    return ip.is_global and not ip.is_multicast
