"""`statusflow redrive`: arguments, the latest attempt of each webhook, filters, what is skipped."""

from __future__ import annotations

import dataclasses
import re

import pytest

from schemas.codec import codec
from schemas.envelope import REDRIVE_HEADER, REDRIVE_RUN_HEADER, RawWebhook
from statusflow_cli.console import EXIT_USAGE, CliError
from statusflow_cli.main import build_parser
from statusflow_cli.redrive import (
    Attempt,
    Attempts,
    DeadLetter,
    Filters,
    Redriven,
    filters_from,
    iso,
    listing,
    redrive_record,
    redriven_envelope,
    select,
)
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize
from streams.core.normalizer import normalize
from streams.core.outputs import Source, dead_letter_record
from tests.factories import FIXTURES

T0 = 1_750_030_100_000
RAW_TOPIC = "wa.webhooks.raw"


def envelope(
    request_id: str = "req-1",
    *,
    channel: str = "loja",
    received_at: int = T0,
    headers: dict[str, str] | None = None,
    fixture: str = "unknown_status.json",
) -> RawWebhook:
    return RawWebhook(
        request_id=request_id,
        provider="wpp",
        channel=channel,
        received_at=received_at,
        content_type="application/json",
        url=f"http://127.0.0.1:8080/webhooks/wpp/{channel}",
        body=(FIXTURES / "wpp" / fixture).read_bytes(),
        headers={"user-agent": "wpp", **(headers or {})},
    )


def dead(
    raw: RawWebhook | bytes,
    *,
    reason: str = "body: status 'teleported' is not a known wpp status",
    source_offset: int = 10,
    at: int = T0 + 1_000,
    dlq_offset: int = 0,
    provider: str = "wpp",
) -> DeadLetter:
    """A dead letter as the normalize stage writes it, read back from the topic."""
    value = raw.to_avro() if isinstance(raw, RawWebhook) else raw
    request_id = raw.request_id if isinstance(raw, RawWebhook) else "req-x"
    channel = raw.channel if isinstance(raw, RawWebhook) else "unknown"
    record = dead_letter_record(
        request_id,
        provider=provider,
        channel=channel,
        reason=reason,
        source=Source(RAW_TOPIC, 1, source_offset),
        value=value,
        at=at,
    )
    return DeadLetter.decode(record, 2, dlq_offset)


def attempts_of(*letters: DeadLetter) -> list[Attempt]:
    collected = Attempts(Filters())
    for letter in letters:
        collected.add(letter)
    return list(collected)


# --- arguments ----------------------------------------------------------------------------------


def args(*argv: str) -> Filters:
    return filters_from(build_parser().parse_args(["redrive", *argv]))


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1750030100000", 1_750_030_100_000),
        ("2025-06-15T23:28:20Z", 1_750_030_100_000),
        ("2025-06-15T20:28:20.250-03:00", 1_750_030_100_250),
        ("2025-06-15 23:28:20", 1_750_030_100_000),  # UTC without an offset, as funnel reads it
    ],
)
def test_times_are_epoch_milliseconds_or_iso_8601(text: str, ms: int) -> None:
    assert args("--since", text, "--until", text) == Filters(since=ms, until=ms)


def test_a_time_that_is_neither_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        args("--until", "last tuesday")
    assert exit_info.value.code == EXIT_USAGE
    assert "neither epoch milliseconds nor ISO 8601" in capsys.readouterr().err


def test_arguments_become_filters() -> None:
    filters = args(
        "--provider", "wpp", "--provider", "aivo", "--channel", "loja", "--reason", "TELEPORTED", "--since", "1000"
    )
    assert filters.providers == {"wpp", "aivo"}
    assert filters.channels == {"loja"}
    assert filters.reason is not None and filters.reason.search("status 'teleported' is not known")
    assert filters.reason.search("status 'tele.ported'") is None  # a substring, not a pattern
    assert (filters.since, filters.until) == (1000, None)
    assert args() == Filters()
    regex = args("--reason-regex", r"status '(in_orbit|teleported)'").reason
    assert regex is not None and regex.search("status 'in_orbit' is not a known wpp status")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--provider", "whatsapp"], "unknown provider whatsapp"),
        (["--reason-regex", "status ("], "--reason-regex"),
        (["--since", "2000", "--until", "1000"], "is after --until"),
        (["--limit", "0"], "--limit must be a positive"),
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(CliError, match=re.escape(message)) as error:
        args(*argv)
    assert error.value.exit_code == EXIT_USAGE


def test_reason_text_and_regex_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["redrive", "--reason", "a", "--reason-regex", "b"])
    assert exit_info.value.code == EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err


# --- the latest attempt of each webhook ----------------------------------------------------------


def test_a_webhook_is_judged_by_its_latest_attempt() -> None:
    raw = envelope()
    first = dead(raw, reason="status 'teleported' is not a known wpp status", source_offset=10, dlq_offset=0)
    again = dead(raw, reason="body has no message id", source_offset=55, at=T0 + 9_000, dlq_offset=7)
    [attempt] = attempts_of(first, again)
    assert attempt.latest == again and attempt.reasons == ["body has no message id"]
    # Read in another order (several partitions), the newer attempt still wins.
    [attempt] = attempts_of(again, first)
    assert attempt.latest == again


def test_dead_letters_of_one_attempt_are_one_attempt_with_every_reason() -> None:
    raw = envelope()
    item0 = dead(raw, reason="body[0]: status 'teleported' is not a known wpp status", dlq_offset=0)
    item2 = dead(raw, reason="body[2] has no message id", dlq_offset=1)
    repeat = dead(raw, reason="body[2] has no message id", at=T0 + 5_000, dlq_offset=2)  # after a worker crash
    [attempt] = attempts_of(item0, item2, repeat)
    assert attempt.reasons == [item0.reason, item2.reason]
    assert attempt.latest == repeat
    assert attempt.reason == f"{item0.reason} | {item2.reason}"


def test_dead_letters_out_of_scope_are_counted_but_not_kept() -> None:
    collected = Attempts(Filters(channels=frozenset({"loja"})))
    collected.add(dead(envelope("a", channel="loja")))
    collected.add(dead(envelope("b", channel="outra")))
    collected.add(None)  # a record that is not a DeadLetter
    assert collected.read == 3
    assert [a.latest.request_id for a in collected] == ["a"]


def test_filters_apply_to_the_latest_attempt() -> None:
    raw = envelope()
    [attempt] = attempts_of(
        dead(raw, reason="body[0]: status 'Teleported' is not a known wpp status"),
        dead(raw, reason="body[1] has no message id", dlq_offset=1),
    )
    failed_at = attempt.latest.failed_at
    assert Filters().matches(attempt)
    assert Filters(reason=re.compile("teleported", re.IGNORECASE)).matches(attempt)  # any of its reasons
    assert not Filters(reason=re.compile("teleported")).matches(attempt)  # a regex is as given
    assert Filters(providers=frozenset({"wpp"}), channels=frozenset({"loja"})).matches(attempt)
    assert not Filters(providers=frozenset({"aivo"})).matches(attempt)
    assert Filters(since=failed_at, until=failed_at).matches(attempt)  # both bounds inclusive
    assert not Filters(since=failed_at + 1).matches(attempt)
    assert not Filters(until=failed_at - 1).matches(attempt)


# --- what a run sends ------------------------------------------------------------------------------


def test_the_redriven_envelope_is_the_received_one_with_two_headers() -> None:
    raw = envelope(headers={"x-forwarded-for": "203.0.113.9"}, fixture="queue.json")
    again = redriven_envelope(raw, 1, "run-1")
    assert again.headers == {**raw.headers, REDRIVE_HEADER: "1", REDRIVE_RUN_HEADER: "run-1"}
    assert dataclasses.replace(again, headers=raw.headers) == raw
    assert again.redrive_generation == 1 and raw.redrive_generation == 0
    # The same events, the same ids: the tracker takes a repeat for what it is.
    events = normalize(raw.to_avro()).events
    assert events and normalize(again.to_avro()).events == events
    assert RawWebhook.from_avro(again.to_avro()) == again


def test_a_run_sends_each_matched_webhook_once_oldest_first() -> None:
    older, newer = envelope("b", received_at=T0), envelope("a", received_at=T0 + 60_000)
    letters = [dead(newer, dlq_offset=0), dead(older, dlq_offset=1), dead(older, dlq_offset=2, at=T0 + 2_000)]
    selection = select(attempts_of(*letters), Filters(), {}, run_id="run-1", read=3)
    assert [p.envelope.request_id for p in selection.send] == ["b", "a"]
    assert [p.generation for p in selection.send] == [1, 1]
    assert selection.summary(sent=2) == "read 3 dead letters, matched 2 webhooks, sent 2, skipped 0"
    assert selection.summary() == "read 3 dead letters, matched 2 webhooks, would send 2, skipped 0"


def test_an_attempt_already_redriven_is_skipped_and_a_new_failure_is_sent_again() -> None:
    raw = envelope()
    original = dead(raw, source_offset=10)
    log = {"req-1": Redriven(Source(RAW_TOPIC, 1, 10), generation=1)}
    # Redriven, then tracked (or not processed yet): nothing new on the DLQ, nothing to send.
    selection = select(attempts_of(original), Filters(), log, run_id="run-2", read=1)
    assert selection.send == [] and [a.latest for a in selection.redriven] == [original]
    assert selection.summary(sent=0) == (
        "read 1 dead letters, matched 1 webhooks, sent 0, skipped 1 (1 already redriven)"
    )
    # --again sends it anyway, one generation further.
    [planned] = select(attempts_of(original), Filters(), log, run_id="run-2", again=True).send
    assert planned.generation == 2
    # Redriven and failed again: the new attempt (the redriven envelope) is sent once more.
    failed_again = dead(
        redriven_envelope(raw, 1, "run-1"),
        reason="body has no message id",
        source_offset=99,
        at=T0 + 9_000,
        dlq_offset=5,
    )
    [planned] = select(attempts_of(original, failed_again), Filters(), log, run_id="run-2").send
    assert planned.generation == 2
    assert planned.envelope.headers[REDRIVE_RUN_HEADER] == "run-2"
    assert planned.attempt.reasons == ["body has no message id"]


def test_a_dead_letter_without_a_webhook_inside_is_skipped() -> None:
    bundle = dead(b"\xc3\x01not an envelope", reason="undecodable event bundle: ...", provider="unknown")
    selection = select(attempts_of(bundle), Filters(), {}, run_id="run-1", read=1)
    assert selection.send == [] and len(selection.unusable) == 1
    assert selection.summary().endswith("skipped 1 (1 no webhook inside)")


def test_limit_holds_back_the_newest() -> None:
    letters = [dead(envelope(f"r{i}", received_at=T0 + i), dlq_offset=i) for i in range(3)]
    selection = select(attempts_of(*letters), Filters(), {}, run_id="run-1", limit=2, read=3)
    assert [p.envelope.request_id for p in selection.send] == ["r0", "r1"]
    assert [p.envelope.request_id for p in selection.held] == ["r2"]
    assert selection.summary(sent=2).endswith("sent 2, skipped 1 (1 over --limit)")


def test_the_dry_run_lists_every_matched_webhook_and_what_it_would_do() -> None:
    sent, skipped = envelope("send-me"), envelope("done-already")
    log = {"done-already": Redriven(Source(RAW_TOPIC, 1, 10), generation=1)}
    selection = select(attempts_of(dead(sent), dead(skipped, dlq_offset=1)), Filters(), log, run_id="r")
    reason = "body: status 'teleported' is not a known wpp status"
    assert listing(selection) == [
        f"send\tsend-me\twpp\tloja\t{iso(T0 + 1_000)}\t{reason}",
        f"skip:redriven\tdone-already\twpp\tloja\t{iso(T0 + 1_000)}\t{reason}",
    ]
    assert iso(T0) == "2025-06-15T23:28:20.000Z"


def test_the_redrive_record_names_the_attempt_it_redrove() -> None:
    [planned] = select(attempts_of(dead(envelope(), source_offset=10)), Filters(), {}, run_id="run-1").send
    record = redrive_record(planned, run_id="run-1", at=T0 + 5_000, sent=(1, 77))
    request_id, entry = Redriven.decode(record)
    assert (request_id, entry) == ("req-1", Redriven(Source(RAW_TOPIC, 1, 10), generation=1))


def test_the_audit_of_a_redriven_webhook_is_not_a_repeat_of_its_first() -> None:
    raw = envelope()

    def audit_ids(value: bytes) -> list[bytes]:
        plan = plan_normalize([RawRecord(b"req-1", value, Source(RAW_TOPIC, 1, 10))], partitions=4, at=now_ms())
        return [v for _, v in plan.audits]

    [first] = audit_ids(raw.to_avro())
    [again] = audit_ids(redriven_envelope(raw, 1, "run-1").to_avro())
    ids = [codec("audit_record").decode(v)["audit_id"] for v in (first, again)]
    assert ids == ["req-1:normalize:", "req-1:normalize:redrive-1"]
