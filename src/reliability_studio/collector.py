"""How a serving process sets up Python's garbage collector once its app is built.

Two things made the collector a pause in the middle of requests (measured with
`gc.callbacks` in both workers under the bench's mixed load, 8 connections):

- Full collections walked everything start-up made (modules, the app, its routes and
  schemas, about 170,000 objects) and freed nothing. Freezing moves them out of its sight.
- With the default young-generation threshold (700 net new objects), the objects of the
  requests in flight were collected, survived and were promoted again and again: about 50
  young and 5 middle collections a second per worker, and a full one (8 to 25 ms, the
  event loop stopped) every 2 to 3 s; in all about 3% of a worker's time. At 10,000, a
  young collection is rare (a few a minute), nothing is promoted often enough to trigger a
  full one (none after start-up in the same load), and cyclic garbage still goes: a young
  collection looks at 10,000 objects at most.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle_after_start_up() -> None:
    """Collect and freeze what start-up made, then collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
