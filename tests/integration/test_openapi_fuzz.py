"""schemathesis against the running receiver: no generated request gets a 5xx.

The receiver is the real app with its real Kafka producer to the session broker (the
`receiver_url` fixture, development mode: loopback webhooks are accepted and published). The
document is the one the receiver serves at /openapi.json. Requests are generated from it, valid
(positive) and invalid (negative) ones, for every operation; each response must be documented
(status code, content type, body schema) and none may be a server error. The example count is
bounded so the test stays well under a minute.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

# More for a longer run: STATUSFLOW_SCHEMATHESIS_EXAMPLES=5000 (the default keeps the suite fast).
EXAMPLES = int(os.environ.get("STATUSFLOW_SCHEMATHESIS_EXAMPLES", "250"))


def _fuzz(base_url: str) -> Counter[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    strategy = st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    seen: Counter[str] = Counter()
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=EXAMPLES <= 250,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=session, timeout=30)
        seen[f"{case.method} {case.path} {response.status_code}"] += 1
        assert response.status_code < 500 or response.status_code == 503, case.as_curl_command()
        case.validate_response(response)

    try:
        run()
    finally:
        session.close()
    return seen


async def test_no_generated_request_gets_a_server_error(receiver_url: str) -> None:
    # requests is blocking: run it beside the event loop that serves the receiver.
    seen = await asyncio.to_thread(_fuzz, receiver_url)
    print("schemathesis:", sum(seen.values()), "requests:", dict(sorted(seen.items())))  # noqa: T201 - figures
    assert sum(seen.values()) >= EXAMPLES
    # Both outcomes were reached: webhooks accepted (durable in Kafka) and requests refused.
    assert any(k.startswith("POST /webhooks/") and k.endswith(" 200") for k in seen)
    assert any(k[-3] == "4" for k in seen)
    # The broker is up: a 503 (neither Kafka nor the spool) never happened.
    assert not any(k.endswith(" 503") and k.startswith("POST") for k in seen)
