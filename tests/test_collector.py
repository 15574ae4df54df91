"""Specification of how a serving process sets up the garbage collector (collector.py).

Each test runs in a process of its own: the collector's settings are the whole process's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SETTLE = "from reliability_studio.collector import settle_after_start_up; settle_after_start_up()\n"


def _run(script: str, cwd: Path) -> dict[str, int]:
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, int] = json.loads(output.strip().splitlines()[-1])
    return result


def test_what_start_up_made_is_frozen_and_young_objects_are_collected_less_often(
    tmp_path: Path,
) -> None:
    script = (
        "import gc, json\n"
        "import reliability_studio.app\n"
        f"{SETTLE}"
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'young': gc.get_threshold()[0]}))"
    )
    seen = _run(script, tmp_path)
    assert seen["frozen"] > 50_000
    assert seen["young"] == 10_000


def test_requests_that_make_and_drop_objects_cause_no_full_collection(tmp_path: Path) -> None:
    # Under the default threshold, objects of requests in flight were promoted until a full
    # collection ran every 2 s; here 8 "requests" at a time each hold 2,000 objects.
    script = (
        "import gc, json\n"
        f"{SETTLE}"
        "full = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and info['generation'] == 2"
        " and full.append(1))\n"
        "in_flight = []\n"
        "for n in range(20_000):\n"
        "    in_flight.append([{'n': i} for i in range(2_000)])\n"
        "    if len(in_flight) > 8:\n"
        "        in_flight.pop(0)\n"
        "print(json.dumps({'full': len(full)}))"
    )
    assert _run(script, tmp_path)["full"] == 0


def test_cyclic_garbage_is_still_collected_without_an_explicit_collection(
    tmp_path: Path,
) -> None:
    script = (
        "import gc, json, weakref\n"
        f"{SETTLE}"
        "class Node:\n"
        "    pass\n"
        "alive = []\n"
        "for n in range(30_000):\n"
        "    a, b = Node(), Node()\n"
        "    a.other, b.other = b, a\n"
        "    alive.append(weakref.ref(a))\n"
        "print(json.dumps({'left': sum(ref() is not None for ref in alive)}))"
    )
    assert _run(script, tmp_path)["left"] < 10_000
