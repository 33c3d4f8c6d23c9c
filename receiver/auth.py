"""Signature checks: pure functions over the raw body and headers, constant-time compares."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress


def meta_signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body with the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").lower())


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
