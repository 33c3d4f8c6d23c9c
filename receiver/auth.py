"""Authentication of webhooks: pure functions over the URL, headers and raw body.

Every comparison of a presented credential with a secret is constant-time
(`hmac.compare_digest`); nothing here logs, and no secret leaves these functions.
One verifier per auth kind, found through `VERIFIERS`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import ipaddress
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from schemas.channels import AuthConfig

JWT_LEEWAY_S = 60  # clock skew tolerated between Vonage and us


@dataclasses.dataclass(frozen=True, slots=True)
class Presented:
    """What one request presents: the URL as the provider saw it, lower-cased headers, the raw body."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    form: Sequence[tuple[str, str]] = ()
    now: float = 0.0


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def meta_signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body with the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return _same(header.removeprefix("sha256=").lower(), expected)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """base64 HMAC-SHA1 of the URL followed by each parameter's name and value, sorted by name then value."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the scheme's default port: Twilio may sign either."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    default_port = 443 if parts.scheme == "https" else 80
    bare = urlunsplit(parts._replace(netloc=prefix + host))
    ported = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{parts.port or default_port}"))
    return list(dict.fromkeys([url, bare, ported]))


def twilio_signature_valid(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], body: bytes, header: str | None
) -> bool:
    """X-Twilio-Signature over the URL Twilio called; JSON bodies are bound by the URL's bodySHA256."""
    if not header:
        return False
    body_hash = dict(parse_qsl(urlsplit(url).query)).get("bodySHA256")
    if body_hash is not None:
        if not _same(body_hash.lower(), hashlib.sha256(body).hexdigest()):
            return False
        params = ()
    valid = False
    for candidate in _url_variants(url):
        # Every variant is compared, so the time taken does not say which one matched.
        valid |= _same(header, twilio_signature(auth_token, candidate, params))
    return valid


def vonage_jwt_valid(
    signature_secret: str, body: bytes, authorization: str | None, *, now: float, max_age_s: int | None = None
) -> bool:
    """Vonage signed webhook: `Authorization: Bearer <JWT>`, HS256 with the signature secret.

    When the claims carry `payload_hash`, it must be the SHA-256 of the raw body; with
    `max_age_s`, the token's `iat` must be that recent.
    """
    if not authorization or authorization[:7].lower() != "bearer ":
        return False
    try:
        with warnings.catch_warnings():
            # The secret's length is the account's choice; a short one must not warn per request.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims = jwt.decode(
                authorization[7:].strip(),
                signature_secret,
                algorithms=["HS256"],
                leeway=JWT_LEEWAY_S,
                options={"require": ["iat"] if max_age_s is not None else [], "verify_aud": False},
            )
    except jwt.InvalidTokenError:
        return False
    payload_hash = claims.get("payload_hash")
    if payload_hash is not None and not (
        isinstance(payload_hash, str) and _same(payload_hash.lower(), hashlib.sha256(body).hexdigest())
    ):
        return False
    if max_age_s is not None:
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or now - issued > max_age_s + JWT_LEEWAY_S:
            return False
    return True


def header_token_valid(expected: str, presented: str | None) -> bool:
    """A static token in a header (Aivo's x-auth-token, Weni's and WPP's configured header)."""
    return presented is not None and _same(presented, expected)


def basic_auth_valid(username: str, password: str, authorization: str | None) -> bool:
    """HTTP basic authentication (RFC 7617)."""
    if not authorization or authorization[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, secret = decoded.partition(":")
    # Both halves are compared whatever the first gave: no early exit to time.
    user_ok = _same(user, username)
    secret_ok = _same(secret, password)
    return bool(sep) and user_ok and secret_ok


def _secret(auth: AuthConfig) -> str:
    assert auth.secret is not None  # AuthConfig guarantees one for every kind but none
    return auth.secret.get_secret_value()


Verifier = Callable[[AuthConfig, Presented], bool]

VERIFIERS: dict[str, Verifier] = {
    "none": lambda auth, req: True,
    "meta_hmac": lambda auth, req: meta_signature_valid(
        _secret(auth), req.body, req.headers.get("x-hub-signature-256")
    ),
    "twilio_signature": lambda auth, req: twilio_signature_valid(
        _secret(auth), req.url, req.form, req.body, req.headers.get("x-twilio-signature")
    ),
    "vonage_jwt": lambda auth, req: vonage_jwt_valid(
        _secret(auth), req.body, req.headers.get("authorization"), now=req.now, max_age_s=auth.max_age_s
    ),
    "header_token": lambda auth, req: header_token_valid(_secret(auth), req.headers.get(auth.token_header)),
    "basic": lambda auth, req: basic_auth_valid(auth.username or "", _secret(auth), req.headers.get("authorization")),
}


def verify(auth: AuthConfig, presented: Presented) -> bool:
    """True when the request carries the credentials the channel's auth kind asks for."""
    return VERIFIERS[auth.kind](auth, presented)


def secret_headers(auth: AuthConfig) -> frozenset[str]:
    """Lower-cased headers that carry this channel's credentials: never stored."""
    extra = {auth.token_header} if auth.kind == "header_token" else set()
    return frozenset({"authorization", "x-hub-signature-256", "x-twilio-signature", *extra})


@functools.lru_cache(maxsize=1024)
def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (cached: parsing the address cost ~5% of a request)."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
