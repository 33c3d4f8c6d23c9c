"""What the receiver must know of each provider: content types and methods. Meaning lives in streams/."""

from __future__ import annotations

import dataclasses

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON = frozenset({JSON_TYPE})
FORM = frozenset({FORM_TYPE})

# Content types that say nothing of the body (what a webhook forwarder sends unless told
# otherwise; "" is no Content-Type at all): the body is sniffed (receiver/content.py).
GENERIC = frozenset({"", "text/plain", "application/octet-stream"})

POST = frozenset({"POST"})
# Senders whose method is a setting (Aivo's and WPP's panels, Weni's and any forwarder's
# webhook): PUT and PATCH are taken like POST.
ANY_WRITE = frozenset({"POST", "PUT", "PATCH"})
WEBHOOK_METHODS = ("POST", "PUT", "PATCH")


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderSpec:
    """HTTP facts of one provider's webhook."""

    name: str
    content_types: frozenset[str]
    methods: frozenset[str] = POST


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("meta", JSON),
        ProviderSpec("twilio", FORM),
        ProviderSpec("infobip", JSON),
        ProviderSpec("vonage", JSON),
        ProviderSpec("gupshup", JSON),
        ProviderSpec("aivo", JSON, ANY_WRITE),
        ProviderSpec("weni", JSON | FORM, ANY_WRITE),
        ProviderSpec("wpp", JSON, ANY_WRITE),
        ProviderSpec("generic", JSON, ANY_WRITE),
    )
}
