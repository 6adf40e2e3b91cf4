"""The SDK's decide() on a published rule with a pathological pattern: no hang in the application."""

from __future__ import annotations

import copy
import time

from .fakes import DOCUMENT, FakeServer, body


def test_decide__pathological_regex_on_user_text__returns_in_under_50_ms(make_client):
    document = copy.deepcopy(DOCUMENT)
    document["rules"].append(
        {"id": "hostile", "when": {"field": "text", "op": "regex", "value": "^(a+)+$"}, "route": "long"}
    )
    server = FakeServer(body(document=document))
    client = make_client(transport=server.transport())
    assert client.refresh() == "installed"

    started = time.process_time()
    decision = client.decide("support", text="a" * 10_000 + "!")
    elapsed = time.process_time() - started

    assert decision.route == "general"
    assert client.decide("support", text="a" * 100).route == "long"
    assert elapsed < 0.05
