"""The server's garbage-collector settings (system.garbage)."""

from __future__ import annotations

import gc

from modelctl_server.system.garbage import YOUNG_THRESHOLD, collect_young, settle_after_start


def test_start_up_objects_are_frozen_out_of_full_collections_and_young_ones_collected_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        settle_after_start()
        # Everything alive now (every module, class and function) is out of the collector's scans.
        assert gc.get_freeze_count() >= len(gc.get_objects(generation=None)) // 2
        assert gc.get_threshold() == (YOUNG_THRESHOLD, threshold[1], threshold[2])
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after start-up: the sampler's round collects it
        del garbage
        assert collect_young() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
