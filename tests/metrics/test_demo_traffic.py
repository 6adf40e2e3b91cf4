"""manage.py demo_traffic: the real SDK's decisions, ingested and rolled up."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Sum

from metrics.models import Decision, RollupHourly

pytestmark = pytest.mark.django_db


def test_demo_traffic__small_run__every_attempt_stored_and_rolled_up(settings: Any) -> None:
    out = io.StringIO()

    call_command("demo_traffic", "--days", "10", "--decisions", "1500", stdout=out)

    attempts = Decision.objects.count()
    assert attempts >= 1500, out.getvalue()
    assert "duplicates, 0 rejected;" in out.getvalue()
    totals = RollupHourly.objects.aggregate(
        count=Sum("count"), requests=Sum("requests"), escalations=Sum("escalations")
    )
    assert totals["count"] == attempts
    assert totals["requests"] == 1500
    assert 0 < totals["escalations"] < 1500 * 0.4
    assert len(set(Decision.objects.values_list("policy_id", flat=True))) == 2
    outcomes = set(Decision.objects.values_list("outcome", flat=True).distinct())
    assert {"ok", "low_confidence", "rate_limited"} <= outcomes
    fallbacks = Decision.objects.filter(attempt__gt=1, escalated=False).count()
    assert fallbacks > 0  # 429s and timeouts moved to the next model of the same tier


def test_demo_traffic__one_policy__only_its_decisions() -> None:
    call_command(
        "demo_traffic", "--days", "3", "--decisions", "200", "--policy", "document-pipeline", stdout=io.StringIO()
    )
    from routing.models import Policy

    assert set(Decision.objects.values_list("policy_id", flat=True)) == {
        Policy.objects.get(slug="document-pipeline").pk
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be 1..90"),
        (["--days", "91"], "--days must be 1..90"),
        (["--decisions", "0"], "--decisions must be at least 1"),
        (["--policy", "no-such-policy"], "--policy: not a demo policy: no-such-policy"),
    ],
)
def test_demo_traffic__bad_argument__error_names_it_and_nothing_is_written(args: list[str], message: str) -> None:
    from django.core.management.base import CommandError

    from routing.models import Policy

    with pytest.raises(CommandError, match=message):
        call_command("demo_traffic", *args, stdout=io.StringIO())

    assert not Policy.objects.exists()
    assert not Decision.objects.exists()
