"""Form bodies read as the documents they stand for (streams/adapters/forms.py)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from streams.adapters.base import UnparseableWebhook
from streams.adapters.forms import MAX_DEPTH, MAX_FIELDS, load_document, load_form
from tests.factories import raw_webhook


def form(*pairs: tuple[str, str]) -> bytes:
    return urlencode(pairs).encode()


def test_flat_fields_are_keys_and_values_stay_text() -> None:
    assert load_form(form(("id", "m1"), ("status", "D"), ("timestamp", "1750030000"))) == {
        "id": "m1",
        "status": "D",
        "timestamp": "1750030000",
    }


def test_bracketed_names_nest_and_numbers_are_list_positions_in_order_with_gaps_closed() -> None:
    body = form(
        ("statuses[3][id]", "b"),
        ("statuses[0][id]", "a"),
        ("statuses[0][errors][0][code]", "470"),
        ("statuses[]", "ignored-not"),
        ("meta[name]", "x"),
    )
    assert load_form(body) == {
        "statuses": [{"id": "a", "errors": [{"code": "470"}]}, "ignored-not", {"id": "b"}],
        "meta": {"name": "x"},
    }


def test_a_field_holding_json_is_that_structure_and_a_lone_object_field_is_the_body() -> None:
    assert load_form(form(("statuses", '[{"id":"a"}]'), ("x", "1"))) == {"statuses": [{"id": "a"}], "x": "1"}
    assert load_form(form(("payload", '{"entry":[]}'))) == {"entry": []}
    assert load_form(form(("data", ' {"status":"read"} '))) == {"status": "read"}
    # Text that only looks like JSON, or JSON that is not a structure, stays text.
    assert load_form(form(("a", "{not json"), ("b", "[1"), ("c", "42"))) == {"a": "{not json", "b": "[1", "c": "42"}


def test_a_repeated_name_with_the_same_value_is_fine_and_with_another_is_refused() -> None:
    assert load_form(b"a=1&a=1") == {"a": "1"}
    with pytest.raises(UnparseableWebhook, match="conflicting values"):
        load_form(b"a=1&a=2")
    with pytest.raises(UnparseableWebhook, match="is also a group"):
        load_form(b"a[b]=1&a=2")
    with pytest.raises(UnparseableWebhook, match="nests under a field that has a value"):
        load_form(b"a=2&a[b]=1")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "no fields"),
        (b"justtext", "not a valid form"),
        (b"a=%ff", "not UTF-8"),
        (b"0=a", "list of values"),
        (("a" + "[b]" * MAX_DEPTH + "=1").encode(), "nested more than"),
        (b"&".join(b"f%d=1" % i for i in range(MAX_FIELDS + 1)), "not a valid form"),
    ],
)
def test_what_is_not_a_form_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(UnparseableWebhook, match=reason):
        load_form(body)


def test_a_huge_index_is_a_key_not_a_huge_list() -> None:
    assert load_form(b"a[99999999999]=1&b=2") == {"a": {"99999999999": "1"}, "b": "2"}
    assert load_form(b"a[999999]=1") == {"a": ["1"]}


def test_the_envelope_content_type_says_how_the_body_is_read() -> None:
    assert load_document(raw_webhook("weni", b"a=1", "application/x-www-form-urlencoded")) == {"a": "1"}
    assert load_document(raw_webhook("weni", b'{"a": 1}')) == {"a": 1}
    with pytest.raises(UnparseableWebhook, match="not valid JSON"):
        load_document(raw_webhook("weni", b"a=1"))
