"""The receiver's OpenAPI 3.1 document, kept true by tests/unit/test_openapi.py."""

from __future__ import annotations

from typing import Any

from receiver.providers import FORM, PROVIDERS, WEBHOOK_METHODS

ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _request_body(provider: str) -> dict[str, Any]:
    """The provider's own content types. Sniffing is a tolerance, not a contract: a body sent as
    text/plain, application/octet-stream or without a Content-Type is accepted when it parses as
    one of them (receiver/content.py), which no schema of those media types could describe."""
    own = sorted(PROVIDERS[provider].content_types)
    return {
        "required": True,
        "description": (
            f"{' or '.join(own)}. A body sent as text/plain, application/octet-stream or without a"
            f" Content-Type is sniffed: read as {' then '.join(own)} when it parses as one, else 415."
        ),
        "content": {t: {"schema": {"type": "object"} if t in FORM else {}} for t in own},
    }


def _webhook_operation(provider: str, method: str, with_channel: bool) -> dict[str, Any]:
    suffix = "" if method == "post" else f"_by_{method}"
    return {
        "summary": f"Receive one {provider} webhook; 200 only once it is durable (Kafka acks=all, or the spool)."
        + ("" if method == "post" else f" {method.upper()} is taken like POST (senders configured that way)."),
        "operationId": f"receive_{provider}_webhook{suffix}" + ("_on_channel" if with_channel else ""),
        "requestBody": _request_body(provider),
        "responses": {
            "200": {
                "description": "Accepted and durable.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
            },
            "400": _error("Malformed JSON or form body."),
            "401": _error("Missing or wrong credentials."),
            "404": _error("Unknown provider or channel."),
            "405": _error("Wrong method."),
            "408": _error("Body not received within STATUSFLOW_BODY_READ_TIMEOUT_S."),
            "413": _error("Body over the size limit."),
            "415": _error("Wrong content type for this provider, or a body sent without one that is neither."),
            "503": _error("Neither Kafka nor the spool can take it; retry after Retry-After seconds."),
        },
    }


def _handshake(with_channel: bool) -> dict[str, Any]:
    query = [
        {"name": "hub.mode", "in": "query", "required": True, "schema": {"const": "subscribe"}},
        {"name": "hub.challenge", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "hub.verify_token", "in": "query", "required": True, "schema": {"type": "string"}},
    ]
    return {
        "summary": "Meta's verification handshake: echoes hub.challenge when hub.verify_token matches.",
        "operationId": "metaHandshakeOnChannel" if with_channel else "metaHandshake",
        "parameters": query,
        "responses": {
            "200": {"description": "The challenge.", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "400": _error("Not a subscribe handshake."),
            "403": _error("Verify token missing or wrong."),
            "404": _error("Unknown provider or channel."),
        },
    }


def _simple(summary: str, content_type: str, codes: tuple[str, ...] = ("200",)) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "operationId": summary.split(":", maxsplit=1)[0].replace(" ", "_").lower(),
            "responses": {code: {"description": summary, "content": {content_type: {"schema": {}}}} for code in codes},
        }
    }


def _webhook_paths() -> dict[str, Any]:
    """`/webhooks/<provider>[/{channel}]` spelled out per provider: each takes its own content types
    (and sniffs generic ones) and its own methods (PUT and PATCH for some); only Meta answers GET
    (the handshake; GET elsewhere is 405)."""
    channel = {"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}}
    paths: dict[str, Any] = {}
    for provider, spec in PROVIDERS.items():
        methods = [m.lower() for m in WEBHOOK_METHODS if m in spec.methods]
        bare: dict[str, Any] = {m: _webhook_operation(provider, m, with_channel=False) for m in methods}
        named: dict[str, Any] = {"parameters": [channel]}
        named |= {m: _webhook_operation(provider, m, with_channel=True) for m in methods}
        if provider == "meta":
            bare["get"] = _handshake(with_channel=False)
            named["get"] = _handshake(with_channel=True)
        paths[f"/webhooks/{provider}"] = bare
        paths[f"/webhooks/{provider}/{{channel}}"] = named
    return paths


def document() -> dict[str, Any]:
    """The OpenAPI document of every route."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "statusflow receiver", "version": "1"},
        "paths": {
            **_webhook_paths(),
            "/healthz": _simple("healthz: alive", "application/json"),
            "/readyz": _simple("readyz: broker reachable or spool usable", "application/json", ("200", "503")),
            "/metrics": _simple("metrics: Prometheus text format", "text/plain"),
            "/openapi.json": _simple("openapi: this document", "application/json"),
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "request_id"],
                    "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
                },
                "Accepted": {
                    "type": "object",
                    "required": ["status", "request_id", "durable"],
                    "properties": {
                        "status": {"const": "accepted"},
                        "request_id": {"type": "string"},
                        "durable": {"enum": ["kafka", "spool"]},
                    },
                },
            }
        },
    }
