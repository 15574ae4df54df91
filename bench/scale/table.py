"""The Markdown table of a scale run: each scenario, its figure, the limit and the target."""

from __future__ import annotations

from typing import Any


def _ratio(value: float, limit: float) -> str:
    return f"{value / limit:.2f}" if limit else "n/a"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown_table(result: dict[str, Any]) -> str:
    """Rows in the order of issue 8's table."""
    s = result["scenarios"]
    limits = result["limits"]
    bare = limits["bare_asgi"]["ok_per_second"]
    create_floor = limits["pgbench_incident_create"]["tps"]
    rows: list[tuple[str, str, str, str, str]] = []

    def add(scenario: str, figure: str, limit: str, target: str, ok: bool) -> None:
        rows.append((scenario, figure, limit, target, _met(ok)))

    lst = s["list"]
    add(
        "`GET /api/incidents?status=open&severity=critical&limit=50`",
        f"{lst['ok_per_second']:,.0f} req/s",
        f"{_ratio(lst['ok_per_second'], bare)} of bare ASGI ({bare:,.0f}/s)",
        ">= 0.40 of bare ASGI",
        lst["ok_per_second"] >= 0.4 * bare,
    )
    floor_latency = limits.get("list_floor", {}).get("latency_ms", {})
    add(
        "the same, p99 at 64 connections",
        f"{lst['latency_ms']['p99']:.1f} ms",
        f"p50 {lst['latency_ms']['p50']:.1f} ms; the list's SQL alone: p99 "
        f"{floor_latency.get('p99', 0.0):.1f} ms",
        "<= 50 ms",
        lst["latency_ms"]["p99"] <= 50,
    )
    get = s["get"]
    get_floor = limits.get("get_floor", {}).get("ok_per_second", 0.0)
    add(
        "`GET /api/incidents/{id}` with services",
        f"{get['ok_per_second']:,.0f} req/s",
        f"{_ratio(get['ok_per_second'], bare)} of bare ASGI; "
        f"{_ratio(get['ok_per_second'], get_floor)} of its SQL alone ({get_floor:,.0f}/s)",
        ">= 0.50 of bare ASGI",
        get["ok_per_second"] >= 0.5 * bare,
    )
    create = s["create"]
    add(
        "`POST /api/incidents` with 2 services",
        f"{create['ok_per_second']:,.0f} creates/s",
        f"{_ratio(create['ok_per_second'], create_floor)} of pgbench, same SQL "
        f"({create_floor:,.0f}/s)",
        ">= 1,000/s and >= 0.20 of pgbench",
        create["ok_per_second"] >= 1000 and create["ok_per_second"] >= 0.2 * create_floor,
    )
    timeline = s["timeline"]
    timeline_floor = limits.get("pgbench_timeline_append", {}).get("tps", 0.0)
    add(
        "`POST /api/incidents/{id}/timeline`",
        f"{timeline['ok_per_second']:,.0f} events/s",
        f"{_ratio(timeline['ok_per_second'], timeline_floor)} of pgbench, same SQL "
        f"({timeline_floor:,.0f}/s)",
        ">= 1,500/s",
        timeline["ok_per_second"] >= 1500,
    )
    mixed = s["mixed"]
    add(
        "mixed 90% read / 10% write",
        f"p99 {mixed['latency_ms']['p99']:.1f} ms",
        f"{mixed['ok_per_second']:,.0f} req/s, 64 connections",
        "p99 <= 50 ms",
        mixed["latency_ms"]["p99"] <= 50,
    )
    if "mixed_latency" in s:  # runs before 2026-11-27 afternoon did not have it
        calm = s["mixed_latency"]
        add(
            "the same at 8 connections",
            f"p99 {calm['latency_ms']['p99']:.1f} ms",
            f"{calm['ok_per_second']:,.0f} req/s, p50 {calm['latency_ms']['p50']:.1f} ms",
            "p99 <= 50 ms",
            calm["latency_ms"]["p99"] <= 50,
        )
    grown = s["growth"]  # alternated rounds (see growth.py)
    big, small, ratio = grown["big_p50"], grown["small_p50"], grown["ratio"]
    how = f"medians of {len(grown['rounds'])} alternated rounds, 8 connections"
    data = result["data"]
    add(
        f"cost growth: the list at {data['small_incidents']:,} vs {data['incidents']:,}",
        f"p50 ratio {ratio:.2f}",
        f"{small:.2f} ms vs {big:.2f} ms ({how})",
        "<= 1.5x",
        ratio <= 1.5,
    )
    one, deep = s["page_1"]["latency_ms"]["p50"], s["page_deep"]["latency_ms"]["p50"]
    page = f"{s['deep_page']:,}"
    add(
        f"deep pagination: page {page} of `status=closed`",
        f"p50 ratio {deep / one:.2f}",
        f"page 1 {one:.2f} ms, page {page} {deep:.2f} ms",
        "<= 2x page 1",
        deep / one <= 2,
    )
    peak = max(s["peak_rss_mb"].values())
    add(
        "server memory under load",
        f"peak RSS {peak:.0f} MB",
        "per process: " + ", ".join(f"{v:.0f}" for v in s["peak_rss_mb"].values()),
        "<= 300 MB per worker",
        peak <= 300,
    )
    startup = s["startup_seconds"]
    add(
        "start-up: `serve` on SQLite until `/health`",
        f"{startup['restarts_median']:.2f} s",
        f"first start (creates the database) {startup['first_start']:.2f} s",
        "<= 2 s",
        max(startup["first_start"], startup["restarts_median"]) <= 2,
    )
    select_only = limits["pgbench_select_only"]["tps"]
    floor = limits.get("list_floor", {}).get("ok_per_second", 0.0)
    lines = [
        "| scenario | measured | against | target | met |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        f"Limits in the same run: bare ASGI {bare:,.0f} req/s "
        f"(p99 {limits['bare_asgi']['latency_ms']['p99']:.1f} ms); pgbench select-only "
        f"{select_only:,.0f} tps; pgbench incident-create SQL {create_floor:,.0f} tps; "
        f"pgbench timeline-append SQL {timeline_floor:,.0f} tps; "
        f"the list's SQL and JSON alone in raw ASGI + asyncpg + orjson {floor:,.0f} req/s "
        f"({_ratio(floor, bare)} of bare ASGI; the list reaches "
        f"{_ratio(lst['ok_per_second'], floor)} of it). "
        f"{result['server']['workers']} workers, {result['load']['connections']} connections, "
        f"{result['load']['seconds']:.0f} s per scenario; {data['incidents']:,} incidents, "
        f"{data['timeline_events']:,} timeline events.",
    ]
    return "\n".join(lines)
