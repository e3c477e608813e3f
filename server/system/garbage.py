"""The garbage collector's settings for a long-running server.

CPython's cyclic collector pauses the whole process. Its oldest generation holds every module,
class and function imported at start-up (over 100,000 objects) plus what serving has kept, so a full
collection took 80-125 ms under load and every stream and call in flight waited
(bench/alert_fanout.py: one alert to 1,000 subscribers arrived 130 ms late whenever one struck).
Once the server is up:

- `gc.freeze()` moves what start-up created into a permanent generation the collector never scans;
  those objects live as long as the process anyway. Full collections then scan only what was
  created since: a few milliseconds.
- The youngest generation is collected after 10,000 net allocations instead of 700: serving a
  message creates and frees many small objects, and 700 meant a collection every few hundred
  messages (2-5 ms each).
- Because young garbage now waits longer, `collect_young` runs with every system-sampler round
  (5 s), just before the allocator is trimmed: without it, cycles such as an exception's traceback
  holding a refused 4 MB request outlived a hostile burst on a quiet server, and RSS stayed at
  387 MB instead of returning near its 103 MB baseline (tests/test_request_limits.py).
"""

from __future__ import annotations

import gc

#: Net allocations between two collections of the youngest generation (CPython's default is 700).
YOUNG_THRESHOLD = 10_000


def settle_after_start() -> None:
    """Collect once, freeze what is left (start-up's objects), then raise the young threshold."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def collect_young() -> int:
    """Collect the two younger generations (milliseconds: start-up's objects are frozen); how many
    unreachable objects were found."""
    return gc.collect(1)
