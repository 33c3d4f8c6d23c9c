"""WPP Marketing status webhooks: a preset of the generic adapter.

WPP Marketing documents its status events (en.wppmarketing.com, "Webhooks status": queue,
creation, delivery, read, error, number not found, expiration, and logout / connection closed,
each activated per channel) but not its field names. So the statuses live in configuration:
`WPP_PRESET` holds the documented words (in English and in the panel's Portuguese) and the
usual field names, and an operator adjusts any of it per channel with `load_wpp_config`, using
the keys documented in `streams.adapters.generic`, without a code change: the channel's
`options` table in the channels file. For example, in TOML:

    [[channels]]
    name = "loja"
    provider = "wpp"
    [channels.options]
    message_id = "data.messageId"
    statuses = { "sent" = "sent", "blocked" = "failed:rejected" }

Logout / connection closed concern the WhatsApp connection, not a message: they become
`ChannelEvent(kind="logout")`, never a message status (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.adapters.generic import GenericConfig, StatusRule, load_generic_config
from streams.domain.status import FailureReason, Status

__all__ = ["WPP_PRESET", "load_generic_config", "load_wpp_config"]

_QUEUED = StatusRule(Status.QUEUED)
_CREATED = StatusRule(Status.CREATED)
_DELIVERED = StatusRule(Status.DELIVERED)
_READ = StatusRule(Status.READ)
_ERROR = StatusRule(Status.FAILED, FailureReason.ERROR)
_NOT_FOUND = StatusRule(Status.FAILED, FailureReason.NOT_FOUND)
_EXPIRED = StatusRule(Status.FAILED, FailureReason.EXPIRED)

WPP_PRESET = GenericConfig(
    message_id=("id", "message_id", "messageId", "data.id", "data.message_id", "data.messageId"),
    status=("status", "event", "data.status", "data.event"),
    timestamp=("timestamp", "date", "created_at", "data.timestamp", "data.date"),
    error_code=("error.code", "error_code", "data.error.code"),
    error_title=("error.title", "error.message", "error_message", "data.error.message", "error", "reason"),
    recipient=("phone", "number", "to", "recipient", "data.phone", "data.number"),
    campaign=("campaign.id", "campaign_id", "campaign", "data.campaign_id"),
    channel_event=("event", "type", "data.event"),
    statuses={
        "queue": _QUEUED,
        "fila": _QUEUED,
        "queued": _QUEUED,
        "creation": _CREATED,
        "criação": _CREATED,
        "criacao": _CREATED,
        "created": _CREATED,
        # Not in WPP's list, but a sender that reports it should not dead-letter the webhook.
        "sent": StatusRule(Status.SENT),
        "delivery": _DELIVERED,
        "entrega": _DELIVERED,
        "delivered": _DELIVERED,
        "read": _READ,
        "leitura": _READ,
        "error": _ERROR,
        "erro": _ERROR,
        "number not found": _NOT_FOUND,
        "número não encontrado": _NOT_FOUND,
        "numero nao encontrado": _NOT_FOUND,
        "not found": _NOT_FOUND,
        "expiration": _EXPIRED,
        "expiração": _EXPIRED,
        "expiracao": _EXPIRED,
        "expired": _EXPIRED,
    },
    channel_events={
        "logout": "logout",
        "connection closed": "logout",
        "conexão": "logout",
        "conexao": "logout",
        "conexão encerrada": "logout",
        "conexao encerrada": "logout",
        "disconnected": "logout",
    },
)


def load_wpp_config(mapping: Mapping[str, Any]) -> GenericConfig:
    """The WPP preset with a channel's overrides applied (keys of `streams.adapters.generic`)."""
    return load_generic_config(mapping, base=WPP_PRESET)
