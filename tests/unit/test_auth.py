"""Authentication functions against the providers' published examples (sources in each test)."""

from __future__ import annotations

import base64
import hashlib
import time

import jwt
import pytest

from receiver.auth import (
    Presented,
    basic_auth_valid,
    header_token_valid,
    meta_signature_valid,
    twilio_signature,
    twilio_signature_valid,
    verify,
    vonage_jwt_valid,
)
from schemas.channels import AuthConfig

# GitHub, "Validating webhook deliveries" → "Testing the webhook payload validation": the same
# X-Hub-Signature-256 scheme Meta uses (sha256= + hex HMAC-SHA256 of the raw body).
# https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# twilio/twilio-python tests/unit/test_request_validator.py (the vectors of Twilio's helper libraries).
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]
TWILIO_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

# Vonage/vonage-python-sdk jwt/tests/test_verify_jwt.py: an HS256 token and its signature secret.
VONAGE_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJPbmxpbmUgSldUIEJ1aWxkZXIiLCJpYXQiOjE2OTc2MzQ2ODAsImV4cCI6"
    "MzMyNTQ1NDA4MjgsImF1ZCI6IiIsInN1YiI6IiJ9.88vJc3I2HhuqEDixHXVhc9R30tA6U_HQHZTC29y6CGM"
)
VONAGE_SECRET = "qwertyuiopasdfghjklzxcvbnm123456"


def test_hub_signature_matches_the_documented_example() -> None:
    assert meta_signature_valid(GITHUB_SECRET, GITHUB_PAYLOAD, GITHUB_SIGNATURE)
    assert meta_signature_valid(GITHUB_SECRET, GITHUB_PAYLOAD, GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256="))
    assert not meta_signature_valid(GITHUB_SECRET, GITHUB_PAYLOAD + b" ", GITHUB_SIGNATURE)
    assert not meta_signature_valid("other", GITHUB_PAYLOAD, GITHUB_SIGNATURE)
    assert not meta_signature_valid(GITHUB_SECRET, GITHUB_PAYLOAD, GITHUB_SIGNATURE.removeprefix("sha256="))
    assert not meta_signature_valid(GITHUB_SECRET, GITHUB_PAYLOAD, None)


def test_twilio_signature_matches_the_documented_example() -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_SIGNATURE
    assert twilio_signature_valid(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, b"", TWILIO_SIGNATURE)
    assert not twilio_signature_valid(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS[:-1], b"", TWILIO_SIGNATURE)
    assert not twilio_signature_valid("54321", TWILIO_URL, TWILIO_PARAMS, b"", TWILIO_SIGNATURE)
    assert not twilio_signature_valid(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, b"", None)


def test_twilio_repeated_parameters_are_sorted_by_value() -> None:
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # Signed without the port, called on :1234 (https and http).
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", TWILIO_SIGNATURE),
        # Signed with the scheme's default port, called without one.
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_twilio_signature_with_and_without_the_port(url: str, signature: str) -> None:
    assert twilio_signature_valid(TWILIO_TOKEN, url, TWILIO_PARAMS, b"", signature)


def test_twilio_json_body_is_bound_by_body_sha256() -> None:
    body = b'{"property": "value", "boolean": true}'
    body_hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    assert hashlib.sha256(body).hexdigest() == body_hash
    url = f"{TWILIO_URL}&bodySHA256={body_hash}"
    assert twilio_signature_valid(TWILIO_TOKEN, url, [], body, "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert not twilio_signature_valid(TWILIO_TOKEN, url, [], body + b" ", "a9nBmqA0ju/hNViExpshrM61xv4=")


def test_vonage_jwt_matches_the_sdk_example() -> None:
    bearer = f"Bearer {VONAGE_TOKEN}"
    assert vonage_jwt_valid(VONAGE_SECRET, b"{}", bearer, now=time.time())
    assert not vonage_jwt_valid("x" * 32, b"{}", bearer, now=time.time())
    assert not vonage_jwt_valid(VONAGE_SECRET, b"{}", VONAGE_TOKEN, now=time.time())  # no Bearer scheme
    assert not vonage_jwt_valid(VONAGE_SECRET, b"{}", "Bearer not.a.jwt", now=time.time())
    assert not vonage_jwt_valid(VONAGE_SECRET, b"{}", None, now=time.time())
    # Issued 2023-10-18: too old for a two-minute window.
    assert not vonage_jwt_valid(VONAGE_SECRET, b"{}", bearer, now=time.time(), max_age_s=120)


def vonage_token(secret: str, body: bytes | None, issued: float, algorithm: str = "HS256") -> str:
    claims: dict[str, object] = {"iat": int(issued), "jti": "8f5a", "iss": "Vonage", "api_key": "abc123"}
    if body is not None:
        claims["payload_hash"] = hashlib.sha256(body).hexdigest()
    return "Bearer " + jwt.encode(claims, secret, algorithm=algorithm)


def test_vonage_payload_hash_binds_the_body() -> None:
    secret, now = "s" * 32, time.time()
    body = b'{"message_uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","status":"delivered"}'
    assert vonage_jwt_valid(secret, body, vonage_token(secret, body, now), now=now, max_age_s=300)
    assert not vonage_jwt_valid(secret, body + b" ", vonage_token(secret, body, now), now=now)
    assert not vonage_jwt_valid(secret, body, vonage_token(secret, body, now - 3600), now=now, max_age_s=300)
    assert not vonage_jwt_valid(secret, body, vonage_token(secret * 2, body, now, "HS512"), now=now)
    unsigned = "Bearer " + jwt.encode({"iat": int(now)}, None, algorithm="none")
    assert not vonage_jwt_valid(secret, body, unsigned, now=now)


def test_basic_auth_matches_rfc_7617() -> None:
    # RFC 7617 section 2: user "Aladdin", password "open sesame".
    header = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert basic_auth_valid("Aladdin", "open sesame", header)
    assert not basic_auth_valid("Aladdin", "open sesam", header)
    assert not basic_auth_valid("aladdin", "open sesame", header)
    assert not basic_auth_valid("Aladdin", "open sesame", "Basic !!!")
    assert not basic_auth_valid("Aladdin", "open sesame", "Basic " + base64.b64encode(b"Aladdin").decode())
    assert not basic_auth_valid("Aladdin", "open sesame", None)


def test_header_token() -> None:
    assert header_token_valid("t0k3n", "t0k3n")
    assert not header_token_valid("t0k3n", "t0k3")
    assert not header_token_valid("t0k3n", None)
    assert not header_token_valid("t0k3n", "ünïcode")


def test_verify_dispatches_on_the_kind() -> None:
    presented = Presented(
        url=TWILIO_URL, headers={"x-twilio-signature": TWILIO_SIGNATURE}, body=b"", form=TWILIO_PARAMS
    )
    assert verify(AuthConfig(kind="twilio_signature", secret=TWILIO_TOKEN), presented)  # type: ignore[arg-type]
    assert not verify(AuthConfig(kind="meta_hmac", secret=TWILIO_TOKEN), presented)  # type: ignore[arg-type]
    assert verify(AuthConfig(kind="none"), presented)
    token = Presented(url="", headers={"x-weni-token": "abc"}, body=b"")
    assert verify(AuthConfig(kind="header_token", header="X-Weni-Token", secret="abc"), token)  # type: ignore[arg-type]
    assert not verify(AuthConfig(kind="header_token", secret="abc"), token)  # type: ignore[arg-type]
