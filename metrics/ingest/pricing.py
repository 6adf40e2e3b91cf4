"""The catalog's price history, held in process memory for pricing decision records.

`prices()` returns a `PriceBook` loaded with one query and trusted for DECISION_PRICE_CACHE_SECONDS;
a model it does not know triggers a reload at most every few seconds (a price just added shows up
at once, an unpriced model does not cost a query per batch).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass

from django.conf import settings

from controlplane.memory import ProcessCache

_MISS_RELOAD = 5.0


@dataclass(frozen=True, slots=True)
class Periods:
    """One model's price periods, oldest first: start epochs and USD per 1M tokens (in, out)."""

    starts: tuple[float, ...]
    input_per_mtok: tuple[float, ...]
    output_per_mtok: tuple[float, ...]


@dataclass(slots=True)
class PriceBook:
    models: dict[str, Periods]
    loaded_at: float

    def cost(self, model: str, epoch: float, tokens_in: float, tokens_out: float) -> float | None:
        """USD for these tokens at the price in force at `epoch`; None for a model with no price.

        Before a model's first period its first price applies: a catalog import records when
        Signalbox learned a price, not when the provider set it, and a known price is a better
        answer than none for traffic logged before the import.
        """
        periods = self.models.get(model)
        if periods is None:
            return None
        i = max(bisect_right(periods.starts, epoch) - 1, 0)
        return (tokens_in * periods.input_per_mtok[i] + tokens_out * periods.output_per_mtok[i]) / 1e6


_book: ProcessCache[str, PriceBook] = ProcessCache("price book", 1)
# When a book lacking a model was last reloaded for it (misses reload at most every _MISS_RELOAD).
_miss_reloaded: ProcessCache[str, float] = ProcessCache("price book miss reloads", 1)


def _load() -> PriceBook:
    from routing.models import ModelPrice

    rows = ModelPrice.objects.order_by("model__model_id", "effective_from").values_list(
        "model__model_id", "effective_from", "input_per_mtok", "output_per_mtok"
    )
    grouped: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for model_id, start, inp, out in rows:
        starts, ins, outs = grouped.setdefault(model_id, ([], [], []))
        starts.append(start.timestamp())
        ins.append(float(inp))
        outs.append(float(out))
    return PriceBook({m: Periods(tuple(s), tuple(i), tuple(o)) for m, (s, i, o) in grouped.items()}, time.monotonic())


def prices(models: set[str] | frozenset[str] = frozenset()) -> PriceBook:
    """The price book, reloaded when stale or when it lacks one of `models` (rate-limited)."""
    book = _book.get("book")
    now = time.monotonic()
    if book is None or now - book.loaded_at >= settings.DECISION_PRICE_CACHE_SECONDS:
        book = _load()
    elif models and not models <= book.models.keys() and now - (_miss_reloaded.get("at") or 0.0) >= _MISS_RELOAD:
        _miss_reloaded.set("at", now)
        book = _load()
    else:
        return book
    _book.set("book", book)
    return book


def forget() -> None:
    """Drop the cached book (tests; after a price import in this process)."""
    _book.clear()
    _miss_reloaded.clear()
