"""settle_heap: what is alive before a data-heavy task's work leaves the garbage collector's walks."""

from __future__ import annotations

import gc

from datamover.operators.base import settle_heap


def test_settle_heap_freezes_what_is_alive_and_widens_the_youngest_generation() -> None:
    alive = [[n] for n in range(5_000)]  # lists: objects the collector tracks
    threshold = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() >= frozen + len(alive)
        assert gc.get_threshold() == (50_000, *threshold[1:])
        assert all(map(gc.is_tracked, alive))  # frozen, not dropped: still tracked, still alive
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
