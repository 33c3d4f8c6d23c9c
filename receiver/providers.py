"""What the receiver must know of each provider: the body's content type. Meaning lives in streams/."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderSpec:
    """HTTP facts of one provider's webhook."""

    name: str
    content_types: frozenset[str]


JSON = frozenset({"application/json"})
FORM = frozenset({"application/x-www-form-urlencoded"})

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("meta", JSON),
        ProviderSpec("twilio", FORM),
        ProviderSpec("infobip", JSON),
        ProviderSpec("vonage", JSON),
        ProviderSpec("gupshup", JSON),
        ProviderSpec("aivo", JSON),
        ProviderSpec("weni", JSON | FORM),
        ProviderSpec("wpp", JSON),
        ProviderSpec("generic", JSON),
    )
}
