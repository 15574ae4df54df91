"""What every benchmark does with its figures: the Markdown table and the JSON result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
# Warn when other work on the machine took more than this share of its CPU while measuring.
BUSY_ELSEWHERE_SHARE = 0.1


def write_result(result: dict[str, Any], name: str) -> Path:
    """Write `result` to bench/results/<date>-<name>.json; its path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def print_figures(rows: list[tuple[str, str]]) -> None:
    """A two-column Markdown table of figures."""
    print("\n| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def postgres_row(pg: dict[str, str]) -> tuple[str, str]:
    """The table row naming PostgreSQL's version and durability settings."""
    return (
        "PostgreSQL",
        f"{pg['server_version']}, fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}, "
        f"full_page_writes={pg['full_page_writes']}",
    )


def warn_if_busy_elsewhere(cpu: dict[str, float], during: str) -> None:
    """Say so when other processes took enough CPU to make the figures too low."""
    if cpu["other_processes"] > BUSY_ELSEWHERE_SHARE * cpu["machine_available"]:
        print(
            f"\nwarning: other processes used {cpu['other_processes']} CPU s of "
            f"{cpu['machine_available']} during {during}; the figures are lower than this "
            "machine can do"
        )
