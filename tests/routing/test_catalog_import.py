"""manage.py catalog_import on LiteLLM's price-map format: hand-made maps and a trimmed copy of the
real file (tests/fixtures/model_prices_litellm.json, 40 of its entries unchanged; the full file's
import is timed by tests/benchmarks/bench_catalog_import.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from routing import selectors
from routing.models import AuditEntry, CatalogModel, ModelPrice

pytestmark = pytest.mark.django_db

PRICE_MAP = Path(__file__).resolve().parents[1] / "fixtures" / "model_prices_litellm.json"


def run(*args: str) -> str:
    out = StringIO()
    call_command("catalog_import", *args, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, entries: object, name: str = "prices.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return str(path)


def test_import__litellm_price_map__imports_priced_chat_models_and_counts_the_rest():
    raw = json.loads(PRICE_MAP.read_text())
    priced_chat = {
        k
        for k, v in raw.items()
        if k != "sample_spec"
        and v.get("mode") == "chat"
        and v.get("input_cost_per_token") is not None
        and v.get("output_cost_per_token") is not None
    }

    output = run(str(PRICE_MAP))

    assert set(CatalogModel.objects.values_list("model_id", flat=True)) == priced_chat
    assert len(priced_chat) == 24
    assert ModelPrice.objects.count() == 24
    assert f"{len(priced_chat)} models created" in output
    assert f"{len(raw) - len(priced_chat)} entries skipped" in output
    for reason in ("documentation entry", "no price", "mode embedding", "mode image_generation", "mode missing"):
        assert reason in output
    assert dict(
        CatalogModel.objects.filter(model_id__in=["gpt-4o-mini", "claude-sonnet-4-5", "o1"]).values_list(
            "model_id", "tier"
        )
    ) == {"gpt-4o-mini": 1, "claude-sonnet-4-5": 2, "o1": 3}
    assert CatalogModel.objects.get(model_id="anthropic.claude-3-5-haiku-20241022-v1:0").provider == "bedrock"
    gpt4o = CatalogModel.objects.get(model_id="gpt-4o")
    assert (gpt4o.provider, gpt4o.context_window, gpt4o.supports_vision, gpt4o.supports_tools) == (
        "openai",
        128_000,
        True,
        True,
    )
    assert gpt4o.prices.get().input_per_mtok == Decimal("2.5")
    assert gpt4o.prices.get().output_per_mtok == Decimal("10")
    assert gpt4o.tier == 2


def test_import__same_file_twice__adds_nothing():
    run(str(PRICE_MAP))

    output = run(str(PRICE_MAP))

    assert "0 models created, 0 updated, 24 unchanged, 0 price periods added" in output
    assert ModelPrice.objects.count() == 24


def test_import__changed_price__adds_a_period_and_keeps_history(tmp_path):
    entry = {
        "litellm_provider": "openai",
        "mode": "chat",
        "max_input_tokens": 128000,
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
    }
    run(
        write(tmp_path, {"gpt-4o": entry, "other": {**entry, "input_cost_per_token": 1e-07}}),
        "--effective-from",
        "2026-01-01T00:00:00Z",
    )

    cheaper = {**entry, "input_cost_per_token": 1.25e-06}
    output = run(
        write(tmp_path, {"gpt-4o": cheaper, "other": {**entry, "input_cost_per_token": 1e-07}}),
        "--effective-from",
        "2026-06-01T00:00:00Z",
    )

    assert "0 models created, 1 updated, 1 unchanged, 1 price periods added" in output
    march = datetime(2026, 3, 1, tzinfo=UTC)
    july = datetime(2026, 7, 1, tzinfo=UTC)
    assert selectors.model_price_at("gpt-4o", march).input_per_mtok == Decimal("2.5")
    assert selectors.model_price_at("gpt-4o", july).input_per_mtok == Decimal("1.25")
    assert selectors.model_price_at("gpt-4o", datetime(2025, 1, 1, tzinfo=UTC)) is None


def test_import__odd_entries__skipped_by_reason(tmp_path):
    entries = {
        "sample_spec": {"mode": "one of: chat, embedding"},
        "no-price": {"litellm_provider": "x", "mode": "chat"},
        "half-price": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": 1e-6},
        "negative": {
            "litellm_provider": "x",
            "mode": "chat",
            "input_cost_per_token": -1,
            "output_cost_per_token": 1e-6,
        },
        "text-price": {
            "litellm_provider": "x",
            "mode": "chat",
            "input_cost_per_token": "cheap",
            "output_cost_per_token": 1e-6,
        },
        "bool-price": {
            "litellm_provider": "x",
            "mode": "chat",
            "input_cost_per_token": True,
            "output_cost_per_token": 1e-6,
        },
        "embedder": {
            "litellm_provider": "x",
            "mode": "embedding",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 0,
        },
        "no-provider": {"mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
        "not-an-object": [1, 2],
        "weird-context": {
            "litellm_provider": "x",
            "mode": "chat",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "max_input_tokens": "lots",
            "max_tokens": 4096,
        },
    }

    output = run(write(tmp_path, entries))

    assert list(CatalogModel.objects.values_list("model_id", "context_window")) == [("weird-context", 4096)]
    for reason in (
        "documentation entry",
        "no price",
        "malformed price",
        "mode embedding",
        "no provider",
        "not an object",
    ):
        assert reason in output
    assert "9 entries skipped" in output


def test_import__tiers_from_input_price(tmp_path):
    def entry(price: float) -> dict:
        return {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": price, "output_cost_per_token": price}

    run(write(tmp_path, {"cheap": entry(0.1e-6), "mid": entry(3e-6), "strong": entry(15e-6)}))

    assert dict(CatalogModel.objects.values_list("model_id", "tier")) == {"cheap": 1, "mid": 2, "strong": 3}


def test_import__dry_run__writes_nothing():
    output = run(str(PRICE_MAP), "--dry-run")

    assert output.startswith("would import")
    assert not CatalogModel.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not a JSON price map"),
        ("[1, 2]", "keyed by model id"),
    ],
)
def test_import__bad_file__clear_error_and_nothing_written(tmp_path, content, message):
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(CommandError, match=message):
        run(str(path))
    assert not CatalogModel.objects.exists()


def test_import__bad_effective_from__clear_error(tmp_path):
    with pytest.raises(CommandError, match="--effective-from"):
        run(write(tmp_path, {}), "--effective-from", "yesterday")
