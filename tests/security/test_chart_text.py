"""Names that arrive in decision records (task types, routes, models) reach the Plotly figures as
plain text: no HTML (links, styles) and no `%{…}` template syntax survives into a label or hover."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from metrics.rollups import services as rollups
from signalbox_client import protocol
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

HOSTILE = '<a href="https://evil.example">x</a>%{y}'


def test_dashboards__hostile_names_from_records__figures_hold_them_as_text(client: Any, make_user: Any) -> None:
    policy = factories.policy("checkout")
    _, secret = factories.sdk_key(policy)
    ts = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    records = [record(timestamp=ts, task_type=HOSTILE, model=f"m{HOSTILE}", route=f"r{HOSTILE}") for _ in range(3)]
    answer = client.post(
        protocol.DECISIONS_PATH,
        data=orjson.dumps({"decisions": records}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert answer.json()["accepted"] == 3
    rollups.rollups_update()
    client.force_login(make_user("viewer"))
    for page in ("cost", "latency", "quality", "escalation"):
        html = client.get(f"/dashboards/{page}/?policy=checkout").content.decode()
        figures = re.findall(r'<script id="fig-[^"]+" type="application/json">(.*?)</script>', html, re.S)
        assert figures, page
        for raw in figures:
            text = json.dumps(json.loads(raw)["data"])
            assert "<a href" not in text, page
            assert "x</a>%{y}" not in text, page
