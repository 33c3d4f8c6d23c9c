"""Every item of a batch stands alone, in every adapter that takes batches.

For any list mixing valid and invalid items: every valid item yields its event, every invalid
one exactly one dead letter whose reason names its position in the body, and no input crashes
or drops a valid sibling.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import codec
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize
from streams.core.normalizer import normalize
from streams.core.outputs import Source
from tests.factories import FIXTURES, raw_webhook

FORM = "application/x-www-form-urlencoded"
TIME = "1750030000"


@dataclasses.dataclass(frozen=True)
class Shape:
    """How one provider batches: a valid item, the body around a list of items, each item's position."""

    provider: str
    valid: Callable[[str], dict[str, Any]]
    body: Callable[[list[object]], bytes]
    position: Callable[[int], str]
    content_type: str = "application/json"


def _meta_body(items: list[object]) -> bytes:
    return orjson.dumps(
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": items}}]}]}
    )


def _bracketed(items: list[object]) -> bytes:
    """On-Premise statuses as a form with bracketed names (a scalar item is a plain field)."""
    pairs: list[tuple[str, str]] = []
    for k, item in enumerate(items):
        if isinstance(item, dict):
            pairs.extend((f"statuses[{k}][{name}]", str(value)) for name, value in item.items())
        else:
            pairs.append((f"statuses[{k}]", str(item)))
    return urlencode(pairs).encode()


_CLOUD = "entry[0].changes[0].value.statuses[{}]"

_DELIVERED = {"status": "delivered", "timestamp": TIME}

SHAPES: dict[str, Shape] = {
    "aivo": Shape(
        "aivo",
        lambda mid: {"message_id": mid, "message_status": "delivered", "event_timestamp": TIME},
        orjson.dumps,
        "body[{}]".format,
    ),
    "meta": Shape("meta", lambda mid: {"id": mid, **_DELIVERED}, _meta_body, _CLOUD.format),
    "gupshup-v3": Shape(
        "gupshup",
        lambda mid: {"id": f"wa-{mid}", "gs_id": mid, "status": "delivered", "timestamp": TIME + "000"},
        _meta_body,
        _CLOUD.format,
    ),
    "infobip": Shape(
        "infobip",
        lambda mid: {"messageId": mid, "status": {"groupName": "DELIVERED"}, "doneAt": TIME},
        lambda items: orjson.dumps({"results": items}),
        "results[{}]".format,
    ),
    "weni-cloud": Shape("weni", lambda mid: {"id": mid, **_DELIVERED}, _meta_body, _CLOUD.format),
    "weni-onpremise": Shape(
        "weni",
        lambda mid: {"id": mid, **_DELIVERED},
        lambda items: orjson.dumps({"statuses": items}),
        "statuses[{}]".format,
    ),
    "weni-onpremise-form": Shape(
        "weni", lambda mid: {"id": mid, **_DELIVERED}, _bracketed, "statuses[{}]".format, FORM
    ),
    "generic": Shape("generic", lambda mid: {"id": mid, **_DELIVERED}, orjson.dumps, "body[{}]".format),
    "wpp": Shape(
        "wpp", lambda mid: {"id": mid, "status": "delivery", "timestamp": TIME}, orjson.dumps, "body[{}]".format
    ),
}


def _spoil(item: dict[str, Any], how: str) -> object:
    """An item made invalid in one way no provider's vocabulary can rescue."""
    if how == "scalar":
        return 7
    if how == "no id":
        return {k: v for k, v in item.items() if k not in {"id", "message_id", "messageId", "gs_id"}}
    if how == "bad time":
        return {**item, **{k: "not a time at all" for k in ("timestamp", "event_timestamp", "doneAt") if k in item}}
    # An unknown status word, wherever this provider puts it.
    if "status" in item and isinstance(item["status"], dict):
        return {**item, "status": {"groupName": "ZZZ_BOGUS"}}
    return {**item, **{k: "zzz-bogus" for k in ("status", "message_status") if k in item}}


SPOILS = ("scalar", "no id", "bad time", "unknown word")

# Each element: a valid item (None) or the way an invalid one is spoiled.
_PLANS = st.lists(st.none() | st.sampled_from(SPOILS), min_size=1, max_size=8)


def _run(shape: Shape, plan: list[str | None]) -> tuple[list[str], list[str], list[str]]:
    """(valid ids, ids of the events found, dead-letter reasons) of one body built from `plan`."""
    items: list[object] = []
    valid: list[str] = []
    for k, how in enumerate(plan):
        item = shape.valid(f"m{k}")
        if how is None:
            valid.append(f"m{k}")
            items.append(item)
        else:
            items.append(_spoil(item, how))
    raw = raw_webhook(shape.provider, shape.body(items), shape.content_type)
    result = normalize(raw.to_avro())
    planned = plan_normalize([RawRecord(b"r", raw.to_avro(), Source("raw", 0, 0))], partitions=4, at=now_ms())
    assert len(planned.audits) == 1
    reasons = [codec("dead_letter").decode(value)["reason"] for _, value in planned.dead_letters]
    return valid, [e.message_id for e in result.events], reasons


@pytest.mark.parametrize("name", sorted(SHAPES))
@settings(max_examples=60)
@given(plan=_PLANS)
def test_every_valid_item_is_an_event_and_every_invalid_one_its_own_dead_letter(
    name: str, plan: list[str | None]
) -> None:
    shape = SHAPES[name]
    valid, found, reasons = _run(shape, plan)
    assert found == valid
    invalid = [k for k, how in enumerate(plan) if how is not None]
    assert len(reasons) == len(invalid), reasons
    for k in invalid:
        naming = [r for r in reasons if re.match(re.escape(shape.position(k)) + r"[.: ]", r)]
        assert len(naming) == 1, (shape.position(k), reasons)


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@pytest.mark.parametrize("name", sorted(n for n in SHAPES if SHAPES[n].content_type != FORM))
@settings(max_examples=80)
@given(items=st.lists(st.none() | _ANY_JSON, min_size=1, max_size=6))
def test_any_sibling_never_drops_a_valid_item_or_crashes(name: str, items: list[object]) -> None:
    shape = SHAPES[name]
    body = [shape.valid(f"m{k}") if item is None else item for k, item in enumerate(items)]
    raw = raw_webhook(shape.provider, shape.body(body), shape.content_type)
    result = normalize(raw.to_avro())
    assert result.dead_letter_reason is None, result.dead_letter_reason
    found = {e.message_id for e in result.events}
    assert {f"m{k}" for k, item in enumerate(items) if item is None} <= found
    planned = plan_normalize([RawRecord(b"r", raw.to_avro(), Source("raw", 0, 0))], partitions=4, at=now_ms())
    assert len(planned.dead_letters) == len(result.rejected)


def test_an_aivo_list_with_one_bad_item_tracks_the_good_one_and_dead_letters_only_the_bad() -> None:
    raw = raw_webhook("aivo", (FIXTURES / "aivo" / "batch_one_bad_item.json").read_bytes())
    result = normalize(raw.to_avro())
    assert [(e.message_id, e.status.value) for e in result.events] == [("wamid.AIVO-GOOD", "delivered")]
    planned = plan_normalize([RawRecord(b"r", raw.to_avro(), Source("raw", 0, 7))], partitions=4, at=now_ms())
    (letter,) = [codec("dead_letter").decode(v) for _, v in planned.dead_letters]
    assert letter["reason"] == "body[1].message_status 'bounced-twice' is not a known Aivo status"
    assert letter["raw"] == raw.to_avro()  # the whole webhook, for a redrive after a fix
    (audit,) = [codec("audit_record").decode(v) for _, v in planned.audits]
    assert audit["outcome"] == "normalized"
    assert audit["detail"] == "1 item dead-lettered: body[1].message_status 'bounced-twice' is not a known Aivo status"
    assert audit["message_keys"] == ["aivo:default:wamid.AIVO-GOOD", "aivo:default:wamid.AIVO-BAD"]
    # The bad item's message has its dead letter in its history; the good one's has none.
    notes = [n for bundle in planned.notes.values() for n in bundle]
    assert [(n["message_key"], n["outcome"]) for n in notes] == [("aivo:default:wamid.AIVO-BAD", "dead_lettered")]


def test_a_batch_whose_every_item_is_bad_is_dead_lettered_item_by_item() -> None:
    body = orjson.dumps([{"message_id": "a", "message_status": "zzz"}, 3])
    raw = raw_webhook("aivo", body)
    result = normalize(raw.to_avro())
    assert result.outcome == "dead_lettered"
    planned = plan_normalize([RawRecord(b"r", raw.to_avro(), Source("raw", 0, 0))], partitions=4, at=now_ms())
    assert [codec("dead_letter").decode(v)["reason"] for _, v in planned.dead_letters] == [
        "body[0].message_status 'zzz' is not a known Aivo status",
        "body[1] must be an object, got int",
    ]


def test_a_sniffed_content_type_is_noted_in_the_normalize_audit() -> None:
    raw = dataclasses.replace(
        raw_webhook("aivo", (FIXTURES / "aivo" / "status_sent.json").read_bytes()), sniffed_from="text/plain"
    )
    bare = dataclasses.replace(raw, sniffed_from="")
    audits = [
        codec("audit_record").decode(
            plan_normalize([RawRecord(b"r", r.to_avro(), Source("raw", 0, 0))], 4, at=now_ms()).audits[0][1]
        )
        for r in (raw, bare)
    ]
    assert [a["detail"] for a in audits] == [
        "content type sniffed: read as application/json (sent as 'text/plain')",
        "content type sniffed: read as application/json (sent without a Content-Type)",
    ]
    assert [a["outcome"] for a in audits] == ["normalized", "normalized"]


def test_a_meta_change_or_entry_that_cannot_be_read_is_rejected_alone() -> None:
    good = {"id": "wamid.OK", "status": "read", "timestamp": TIME}
    body = orjson.dumps(
        {
            "entry": [
                {"changes": [{"value": {"statuses": [good]}}, {"value": 3}]},
                {"changes": "not a list"},
                7,
            ]
        }
    )
    result = normalize(raw_webhook("meta", body).to_avro())
    assert [e.message_id for e in result.events] == ["wamid.OK"]
    assert sorted(r.dead_letter_reason for r in result.rejected) == [
        "entry[0].changes[1].value must be an object",
        "entry[1].changes must be a list",
        "entry[2] must be an object, got int",
    ]


# Golden fixtures: one batch per provider with bad items among good ones; (fixture, content type,
# the good items' message ids, the dead letters' reasons in the order of the body).
GOLDEN = [
    (
        "aivo/batch_one_bad_item.json",
        None,
        ["wamid.AIVO-GOOD"],
        ["body[1].message_status 'bounced-twice' is not a known Aivo status"],
    ),
    (
        "meta/batch_one_bad_status.json",
        None,
        ["wamid.META-OK-1", "wamid.META-OK-2"],
        ["entry[0].changes[0].value.statuses[1].status 'in_orbit' is not a known Meta status"],
    ),
    (
        "gupshup/v3_batch_one_bad_status.json",
        None,
        ["gs-ok-1"],
        ["entry[0].changes[0].value.statuses[1].timestamp is not a recognised time: 'last tuesday'"],
    ),
    (
        "infobip/batch_one_bad_report.json",
        None,
        ["7f3c1e2a-9b4d-4c6e-8a1f-2d3b5c7e9a10"],
        [
            "results[1].status.groupName 'TELEPORTED' is not a known Infobip status group",
            "results[2] must be an object, got str",
        ],
    ),
    (
        "generic/list_one_bad_item.json",
        None,
        ["gen-ok-1", "gen-ok-2"],
        [
            "body[1]: status 'teleported' is not a known generic status",
            "body[2] has no message id at 'id', 'message_id'",
        ],
    ),
    (
        "wpp/list_one_bad_item.json",
        None,
        ["wpp-ok-1", "wpp-ok-2"],
        ["body[1]: status 'abducted by aliens' is not a known wpp status"],
    ),
    (
        "weni/onpremise_batch_one_bad.json",
        None,
        ["weni-ok-1", "weni-ok-2"],
        ["statuses[1].status 'teleported' is not a known Weni status"],
    ),
    (
        "weni/form_onpremise_batch_one_bad.form",
        FORM,
        ["weni-ok-1", "weni-ok-2"],
        ["statuses[1].status 'teleported' is not a known Weni status"],
    ),
]


@pytest.mark.parametrize(("fixture", "content_type", "good", "reasons"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_batches_track_the_good_items_and_dead_letter_each_bad_one(
    fixture: str, content_type: str | None, good: list[str], reasons: list[str]
) -> None:
    provider = fixture.split("/", maxsplit=1)[0]
    raw = raw_webhook(provider, (FIXTURES / fixture).read_bytes(), content_type or "application/json")
    result = normalize(raw.to_avro())
    assert [e.message_id for e in result.events] == good
    planned = plan_normalize([RawRecord(b"r", raw.to_avro(), Source("raw", 0, 0))], partitions=4, at=now_ms())
    assert [codec("dead_letter").decode(v)["reason"] for _, v in planned.dead_letters] == reasons
    (audit,) = [codec("audit_record").decode(v) for _, v in planned.audits]
    assert audit["outcome"] == "normalized"
    assert audit["detail"].startswith(f"{len(reasons)} item")
