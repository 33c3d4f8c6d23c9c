"""The goals of issue 7, judged on one run's figures, and the table printed and put in the README."""

from __future__ import annotations

from typing import Any


def _goal(name: str, value: float | None, target: str, met: bool | None, note: str = "") -> dict[str, Any]:
    goal: dict[str, Any] = {
        "name": name,
        "value": value,
        "target": target,
        "met": bool(met) if value is not None else False,
    }
    if note:
        goal["note"] = note
    return goal


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal as {name, value, target, met}; a figure that could not be measured is not met."""
    p = r.get("pipeline", {})
    rec = r.get("receiver", {})
    mem = r.get("memory", {})
    recovery = r.get("recovery", {})
    vs_raw = p.get("ratio_pipeline_raw")
    vs_naive = p.get("ratio_pipeline_naive")
    vs_quix = p.get("ratio_pipeline_quix")
    vs_bare = rec.get("ratio_receiver_bare")
    p99 = rec.get("receiver_half_rate", {}).get("p99_ms")
    store = mem.get("store_bytes_mean")
    measured_1m = recovery.get("tracked_messages") == 1_000_000
    rec_s = recovery.get("recovery_s") if measured_1m else recovery.get("projected_1m_s")
    rec_note = "" if measured_1m else f"projected linearly from {recovery.get('tracked_messages')} messages"
    first = p.get("pipeline", {}).get("start_to_first_s")
    return [
        _goal("pipeline vs raw aiokafka pass-through", vs_raw, ">= 0.5x", vs_raw is not None and vs_raw >= 0.5),
        _goal("pipeline vs naive Faust", vs_naive, ">= 5x", vs_naive is not None and vs_naive >= 5),
        _goal("pipeline vs the Quix Streams peer", vs_quix, ">= 2x", vs_quix is not None and vs_quix >= 2),
        _goal("receiver vs bare aiohttp (requests/s, durable acks)", vs_bare, ">= 0.6x", vs_bare and vs_bare >= 0.6),
        _goal("receiver p99 at half its max rate (ms)", p99, "< 20 ms", p99 is not None and p99 < 20),
        _goal("table store bytes per tracked message", store, "<= 300 B", store is not None and store <= 300),
        _goal("recovery of 1M tracked messages (s)", rec_s, "< 60 s", rec_s is not None and rec_s < 60, rec_note),
        _goal("worker start to first processed event (s)", first, "< 3 s", first is not None and first < 3),
        *_fullstack_goals(r),
    ]


def _fullstack_goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals of "keep up with live traffic" (bench/fullstack.py)."""
    fs = r.get("fullstack", {})
    fresh = fs.get("freshness", {})
    backlog = fs.get("backlog", {})
    step_s = fs.get("step_s")
    short = f"steps of {step_s:.0f} s, not 120 s" if step_s is not None and step_s < 120 else ""
    sustained = fs.get("ratio_pipeline")
    p99 = fresh.get("p99_ms")
    drain = backlog.get("ratio_pipeline")
    rereads = backlog.get("rereads")
    size = backlog.get("requested")
    small = f"backlog of {size:,}, not 300,000" if size is not None and size < 300_000 else ""
    return [
        _goal(
            "full stack: sustainable rate vs isolated pipeline",
            sustained,
            ">= 0.8x",
            sustained is not None and sustained >= 0.8,
            short,
        ),
        _goal(
            "full stack: freshness p99 at half the sustainable rate (ms)",
            p99,
            "< 100 ms",
            p99 is not None and p99 < 100,
            short,
        ),
        _goal(
            "full stack: backlog drain vs isolated pipeline",
            drain,
            ">= 0.8x",
            drain is not None and drain >= 0.8,
            small,
        ),
        _goal("full stack: worker re-reads during the backlog drain", rereads, "0", rereads == 0, small),
    ]


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    """(section, what, figure, vs baseline) rows of the table."""
    out: list[tuple[str, ...]] = []
    p = r.get("pipeline", {})
    raw = p.get("raw", {})
    raw_rate = raw.get("webhooks_per_s")
    for key, label in (
        ("raw", "raw aiokafka pass-through"),
        ("raw_confluent", "raw confluent-kafka pass-through"),
        ("naive", "naive Faust (per-event awaits, JSON)"),
        ("quix", "Quix Streams peer (group_by, RocksDB state)"),
    ):
        run = p.get(key, {})
        rate = run.get("webhooks_per_s")
        out.append(("pipeline", label, f"{_f(rate)} webhooks/s", _ratio(rate, raw_rate)))
    real = p.get("pipeline", {})
    out.append(
        (
            "pipeline",
            "statusflow worker",
            f"{_f(real.get('webhooks_per_s'))} webhooks/s",
            _ratio(real.get("webhooks_per_s"), raw_rate),
        )
    )
    out.append(("pipeline", "worker start → first change", f"{_f(real.get('start_to_first_s'), 2)} s", ""))
    out.append(("pipeline", "naive start → first change", f"{_f(p.get('naive', {}).get('start_to_first_s'), 2)} s", ""))
    out.append(("pipeline", "Quix start → first change", f"{_f(p.get('quix', {}).get('start_to_first_s'), 2)} s", ""))
    rec = r.get("receiver", {})
    bare_max = rec.get("bare_max_rps")
    for name in ("bare", "receiver"):
        for load in rec.get(name, []):
            out.append(
                (
                    "receiver",
                    f"{name} c={load['concurrency']}",
                    f"{_f(load['rps'])} req/s  p50 {_f(load['p50_ms'], 2)} ms  p99 {_f(load['p99_ms'], 2)} ms",
                    _ratio(load["rps"], bare_max),
                )
            )
    half = rec.get("receiver_half_rate")
    if half:
        out.append(
            (
                "receiver",
                f"receiver paced at {_f(half['target_rps'])} req/s",
                f"{_f(half['rps'])} req/s  p50 {_f(half['p50_ms'], 2)} ms  p99 {_f(half['p99_ms'], 2)} ms",
                "",
            )
        )
    mem = r.get("memory", {})
    if mem:
        out.append(
            (
                "state",
                "store bytes per tracked message (key+value)",
                f"mean {_f(mem['store_bytes_mean'])}  p99 {mem['store_bytes_p99']}",
                "",
            )
        )
        out.append(
            ("state", "memory-store heap per message", f"{_f(mem['memory_store_heap_bytes_per_message'])} B", "")
        )
    recovery = r.get("recovery", {})
    if recovery:
        out.append(
            (
                "state",
                f"recovery of {_f(recovery.get('tracked_messages'))} tracked messages",
                f"{_f(recovery.get('recovery_s'), 1)} s ({_f(recovery.get('messages_per_s'))} msg/s)",
                f"1M ≈ {_f(recovery.get('projected_1m_s'))} s",
            )
        )
    out.extend(_fullstack_rows(r))
    for point in r.get("scaling", []):
        out.append(
            (
                "scaling",
                f"{point['workers']} worker(s), {_f(point['webhooks'])} webhooks",
                f"{_f(point['webhooks_per_s'])} webhooks/s  {_f(point['us_per_webhook'])} µs/webhook",
                _ratio(point["webhooks_per_s"], raw_rate),
            )
        )
    return out


def _fullstack_rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    fs = r.get("fullstack", {})
    if not fs:
        return []
    base = fs.get("pipeline_rate")
    out: list[tuple[str, ...]] = []
    for step in fs.get("steps", []):
        verdict = "bounded" if step["bounded"] else "NOT bounded"
        ended = f" ({step['ended']})" if step.get("ended") else ""
        out.append(
            (
                "fullstack",
                f"{_f(step['step_s'], 0)} s at {_f(step['target_rate'], 0)}/s",
                f"acked {_f(step['rate'])}/s  lag A {_f(step['lag_first_third_max'])} C "
                f"{_f(step['lag_last_third_max'])} max {_f(step['lag_max'])}  {verdict}{ended}",
                "",
            )
        )
    out.append(
        (
            "fullstack",
            "sustainable rate (every lag bounded)",
            f"{_f(fs.get('sustainable_rate'))} webhooks/s",
            _ratio(fs.get("sustainable_rate"), base) + (" pipeline" if base and fs.get("sustainable_rate") else ""),
        )
    )
    fresh = fs.get("freshness")
    if fresh:
        rate = fresh["step"]["rate"]
        out.append(
            (
                "fullstack",
                f"freshness at {_f(rate, 0)}/s (200 → change record)",
                f"p50 {_f(fresh['p50_ms'])} ms  p99 {_f(fresh['p99_ms'])} ms  ({_f(fresh['correlated'])} changes)",
                f"from receipt p99 {_f(fresh['p99_from_receipt_ms'])} ms",
            )
        )
        ref, api = fresh["reference"], fresh["api"]
        out.append(
            (
                "fullstack",
                "end state vs reference fold",
                f"{_f(ref['matched'])}/{_f(ref['messages'])} messages (changes topic)",
                f"API {api['matched']}/{api['asked']}",
            )
        )
    backlog = fs.get("backlog")
    if backlog:
        rate = backlog.get("webhooks_per_s")
        out.append(
            (
                "fullstack",
                f"backlog drain of {_f(backlog['accepted']['acked'])} webhooks",
                f"{_f(rate)} webhooks/s  start → first change {_f(backlog['start_to_first_s'], 2)} s",
                _ratio(rate, base) + (" pipeline" if base and rate else ""),
            )
        )
        out.append(
            (
                "fullstack",
                "worker re-read warnings (backlog / whole part)",
                f"{backlog['rereads']} / {fs.get('rereads_total', '-')}",
                "",
            )
        )
    return out


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else ""


def table(r: dict[str, Any]) -> str:
    """The plain-text table printed at the end of a run."""
    body = [("part", "what", "figure", "vs baseline"), *rows(r)]
    widths = [max(len(row[i]) for row in body) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("goals:")
    for g in r.get("goals", []):
        mark = "MET    " if g["met"] else "NOT MET"
        note = f"  ({g['note']})" if g.get("note") else ""
        lines.append(f"  {mark} {g['name']}: {_f(g['value'], 2)} (target {g['target']}){note}")
    return "\n".join(lines)


def markdown(r: dict[str, Any]) -> str:
    """The same table in Markdown, for the README."""
    m = r.get("machine", {})
    lines = [
        f"Measured {r.get('date')} on {m.get('cores')} cores, {m.get('memory_gb')} GB "
        f"(faust-streaming {m.get('versions', {}).get('faust-streaming')}, "
        f"aiokafka {m.get('versions', {}).get('aiokafka')}), {_f(r.get('workload', {}).get('webhooks'))} webhooks, "
        f"whole run {r.get('elapsed_s')} s.",
        "",
        "| part | what | figure | vs baseline |",
        "| --- | --- | --- | --- |",
        *(f"| {' | '.join(row)} |" for row in rows(r)),
        "",
        "| goal | value | target | met |",
        "| --- | --- | --- | --- |",
        *(
            f"| {g['name']} | {_f(g['value'], 2)} | {g['target']} | {'yes' if g['met'] else '**no**'} |"
            for g in r.get("goals", [])
        ),
    ]
    return "\n".join(lines) + "\n"
