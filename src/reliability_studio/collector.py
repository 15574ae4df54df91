"""How a serving process sets up Python's garbage collector once its app is built.

Two things made the collector a pause in the middle of requests (measured with
`gc.callbacks` in both workers under the bench's mixed load, 8 connections):

- Full collections walked everything start-up made (modules, the app, its routes and
  schemas, about 170,000 objects) and freed nothing. Freezing moves them out of its sight.
- With the default young-generation threshold (700 net new objects), the objects of the
  requests in flight were collected, survived, and were promoted again and again: about
  100 young and 10 middle collections a second per worker, and a full one (10 to 25 ms, the
  event loop stopped) every 2 s. At 10,000, a young collection is a rare event (30 in
  over a minute of load), the promotions that trigger full ones stop, and the collector's
  share of a worker's time fell from about 3.5% to under 0.5%. Cyclic garbage still goes:
  each young collection holds at most 10,000 objects (a few ms).
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
