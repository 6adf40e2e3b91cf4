"""`manage.py simulate_alerts`: a short seeded scenario replayed through the rollups and the hourly
evaluation, scored: the injected causes are found by the detectors that fit them, and the
simulated policy is gone afterwards."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from metrics.models import Alert, RollupHourly
from routing.models import Policy


@pytest.mark.slow
@pytest.mark.django_db
def test_simulate_alerts__outage_and_share_shift__detected_by_their_detectors() -> None:
    out = io.StringIO()
    call_command(
        "simulate_alerts",
        "--seeds=1",
        "--first-seed=300",
        "--clean=0",
        "--days=4",
        "--kinds=provider_outage,route_share_shift",
        "-v",
        "2",
        stdout=out,
    )
    text = out.getvalue()
    # kind | injected | detected ≤ 24 h | recall | detected at all | median h | p90 h | first detectors
    assert "| provider_outage | 1 | 1 | 1.00 | 1 | 1 | 1 | error_spike 1 |" in text
    assert "| route_share_shift | 1 | 1 | 1.00 |" in text
    assert "traffic_share 1 |" in text
    assert "False alerts per 100 route-days" in text
    assert not Policy.objects.filter(slug__startswith="sim-").exists()
    assert not RollupHourly.objects.exists()
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_simulate_alerts__unknown_kind__refused_naming_it() -> None:
    with pytest.raises(CommandError, match="--kinds: unknown nonsense"):
        call_command("simulate_alerts", "--seeds=1", "--kinds=nonsense", stdout=io.StringIO())
