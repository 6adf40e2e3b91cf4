"""The one per-process cache idiom: bounded, least recently used evicted first, one reset for all,
empty in a forked child."""

from __future__ import annotations

import os

import pytest

from controlplane.memory import ProcessCache, forget_all


def test_process_cache__past_its_size__evicts_the_least_recently_used_one_at_a_time() -> None:
    cache: ProcessCache[str, int] = ProcessCache("test", 3)
    for i, key in enumerate("abc"):
        cache.set(key, i)
    assert cache.get("a") == 0  # used: now the most recent
    cache.set("d", 3)
    assert sorted(cache.keys()) == ["a", "c", "d"]
    assert len(cache) == 3


def test_process_cache__update_and_pop() -> None:
    cache: ProcessCache[str, int] = ProcessCache("test", 2)
    cache.set("a", 1)
    cache.update("a", lambda v: v + 1)
    cache.update("missing", lambda v: v + 1)
    assert (cache.get("a"), "missing" in cache) == (2, False)
    assert cache.pop("a") == 2
    assert cache.pop("a") is None


def test_process_cache__size_below_one__refused_naming_it() -> None:
    with pytest.raises(ValueError, match="tiny: size must be at least 1"):
        ProcessCache("tiny", 0)


def test_forget_all__clears_every_process_cache_including_the_apps() -> None:
    from routing import live

    mine: ProcessCache[str, int] = ProcessCache("test", 5)
    mine.set("a", 1)
    live._keys.set("hash", live.KeyEntry(None, frozenset(), 0.0))
    forget_all()
    assert len(mine) == 0
    assert len(live._keys) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child__starts_with_every_process_cache_empty() -> None:
    cache: ProcessCache[str, int] = ProcessCache("test", 5)
    cache.set("a", 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report how many entries it inherited
        os.write(write, str(len(cache)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"0"
    assert len(cache) == 1  # the parent keeps its own
