"""WPP Marketing status webhooks: a preset of the generic adapter.

WPP Marketing documents its status events (en.wppmarketing.com/integrations/webhooks-status/:
queue, creation, delivery, read, error, number not found / invalid number, expiration, and
logout / connection closed, each activated per channel; the panel names them in Portuguese:
Fila, Criação, Entrega, Leitura, Erro, Conexão) but not its field names. So the statuses live
in configuration: `WPP_PRESET` holds the documented words, their usual Portuguese and English
variants (Entregue, Lida, Enviada, Falha, Falhou, Erro…; matched case- and accent-insensitively)
and the usual field names, including the `{"event": "status", "data": {...}}` envelope; an
operator adjusts any of it per channel with `load_wpp_config`, using the keys documented in
`streams.adapters.generic`, without a code change: the channel's `options` table in the
channels file. For example, in TOML:

    [[channels]]
    name = "loja"
    provider = "wpp"
    [channels.options]
    message_id = "data.messageId"
    timezone = "America/Sao_Paulo"        # WPP's panel sends local times such as 15/06/2025 20:20:20
    statuses = { "sent" = "sent", "blocked" = "failed:rejected" }

Logout / connection closed concern the WhatsApp connection, not a message: they become channel
events, judged by the state the event carries (a `Conexão` event that says `connected` resolves
a logout instead of raising one; see the generic adapter), never a message status (docs/architecture.md).
A "number not found" report without a message id raises the channel's number-not-found alert.

WPP-like senders built on WhatsApp Web libraries relay their acks (`SERVER_ACK`, `DELIVERY_ACK`,
`READ`, `PLAYED`, `PENDING`, `ERROR`) and `connection.update` events (state open / close /
connecting): the preset understands those words too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.adapters.generic import (
    CONNECTED,
    CONNECTION,
    LOGOUT,
    GenericConfig,
    StatusRule,
    load_generic_config,
)
from streams.domain.status import FailureReason, Status

__all__ = ["WPP_PRESET", "load_generic_config", "load_wpp_config"]

_QUEUED = StatusRule(Status.QUEUED)
_CREATED = StatusRule(Status.CREATED)
_SENT = StatusRule(Status.SENT)
_DELIVERED = StatusRule(Status.DELIVERED)
_READ = StatusRule(Status.READ)
_ERROR = StatusRule(Status.FAILED, FailureReason.ERROR)
_NOT_FOUND = StatusRule(Status.FAILED, FailureReason.NOT_FOUND)
_EXPIRED = StatusRule(Status.FAILED, FailureReason.EXPIRED)


# Documented (English page and the panel's Portuguese), then the usual variants; accents and
# case do not matter (Criação = criacao = CRIACAO, LIDA = lida).
_STATUS_WORDS: tuple[tuple[StatusRule, tuple[str, ...]], ...] = (
    (_QUEUED, ("queue", "queued", "fila", "na fila", "em fila", "enfileirado", "enfileirada", "pendente", "pending")),
    (_CREATED, ("creation", "created", "criação", "criado", "criada")),
    # Not in WPP's list, but a sender that reports it should not dead-letter the webhook.
    (_SENT, ("sent", "enviado", "enviada", "envio", "server ack")),
    (_DELIVERED, ("delivery", "delivered", "entrega", "entregue", "entregado", "recebida", "recebido", "delivery ack")),
    (_READ, ("read", "leitura", "lida", "lido", "visualizada", "visualizado", "seen", "played")),
    (_ERROR, ("error", "erro", "failed", "failure", "fail", "falha", "falhou", "falha no envio", "erro no envio",
              "nao entregue", "undelivered")),
    (_NOT_FOUND, ("number not found", "invalid number", "not found", "número não encontrado", "número inválido",
                  "número inexistente", "numero nao existe", "sem whatsapp", "nao e whatsapp")),
    (_EXPIRED, ("expiration", "expired", "expiração", "expirado", "expirada")),
)  # fmt: skip

# A name that says the connection is gone (WPP's "Conexão" event is documented as "connection
# was closed"), one that says it is back, and names that say nothing by themselves; the state an
# event carries decides whenever it has one (streams.adapters.generic).
_CHANNEL_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (LOGOUT, ("logout", "logged out", "connection closed", "disconnected", "desconectado", "desconectada",
              "conexão", "conexão encerrada", "conexão fechada", "conexão perdida")),
    (CONNECTED, ("connected", "conectado", "conectada", "reconectado", "conexão restabelecida")),
    (CONNECTION, ("connection", "connection update", "connection status", "status da conexão", "estado da conexão")),
)  # fmt: skip


WPP_PRESET = GenericConfig(
    message_id=(
        "id",
        "message_id",
        "messageId",
        "data.id",
        "data.message_id",
        "data.messageId",
        "data.key.id",
        "data.keyId",
    ),
    status=("status", "event", "data.status", "data.event"),
    timestamp=(
        "timestamp",
        "date",
        "created_at",
        "data.timestamp",
        "data.date",
        "data.created_at",
        "data.messageTimestamp",
        "date_time",
    ),
    error_code=("error.code", "error_code", "data.error.code", "data.error_code"),
    error_title=(
        "error.title",
        "error.message",
        "error_message",
        "data.error.message",
        "data.error_message",
        "error",
        "reason",
        "data.reason",
    ),
    recipient=("phone", "number", "to", "recipient", "data.phone", "data.number", "data.to", "data.remoteJid"),
    campaign=("campaign.id", "campaign_id", "campaign", "data.campaign_id", "data.campaign.id", "data.campaign"),
    channel_event=("event", "type", "data.event"),
    statuses={word: rule for rule, words in _STATUS_WORDS for word in words},
    channel_events={word: kind for kind, words in _CHANNEL_WORDS for word in words},
)


def load_wpp_config(mapping: Mapping[str, Any]) -> GenericConfig:
    """The WPP preset with a channel's overrides applied (keys of `streams.adapters.generic`)."""
    return load_generic_config(mapping, base=WPP_PRESET)
