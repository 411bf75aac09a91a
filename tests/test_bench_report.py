"""bench/e2e/report.py: RESULTS.md's generated part comes from the run's JSON alone
(figures in the text, the tables and the targets agree because one function computes
each), and a re-render replaces only that part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

report = pytest.importorskip("bench.e2e.report")


def row(label: str, mode: str, transport: str = "tcp", placement: str = "same-core", **figures: Any) -> dict[str, Any]:
    return {"client": label, "transport": transport, "placement": placement, "mode": mode, "figures": figures, "error": None}


def run_of(results: list[dict[str, Any]], repeat: int = 3) -> dict[str, Any]:
    return {"command": "python -m bench.e2e.runner --results bench/RESULTS.md", "started": "2026-12-01 06:00 UTC",
            "finished": "2026-12-01 06:30 UTC", "loadavg_end": [1.0, 1.0, 1.0],
            "machine": {"cpu": "Test CPU", "vcpus": 2, "kernel": "6.x", "mem_gib": 24.0, "loadavg": [0.5, 0.5, 0.5],
                        "versions": {k: "1.0" for k in ("python", "picows", "pysimdjson", "websockets", "aiohttp", "orjson",
                                                        "uvloop", "Cython", "cc", "openssl")}},
            "settings": {"idle": 5000, "warmup": 1000, "throughput": 100000, "flood": 100000, "every": 100, "repeat": repeat},
            "results": results}


RESULTS = [
    row("C floor", "idle", p50_us=6.0, p99_us=10.0),
    row("drbfast.connect (asyncio)", "idle", p50_us=7.5, p99_us=25.0, spread={"p50_us": [7.4, 7.5, 9.9]}),
    row("drbfast.connect (uvloop)", "idle", p50_us=7.2, p99_us=12.0),
    row("websockets+json (asyncio)", "idle", p50_us=60.0, p99_us=120.0),
    row("aiohttp+json (asyncio)", "idle", p50_us=15.0, p99_us=100.0),
    row("websockets+orjson (asyncio)", "throughput-few", rate=100_000.0),
    row("drbfast.connect lazy lanes=False (asyncio)", "throughput-few", rate=300_000.0, sent=100, client={"notifications": 100}),
    row("drbfast.connect (asyncio)", "throughput-few", rate=500_000.0, sent=1000, client={"notifications": 10}),
    row("websockets+json (asyncio)", "flood", p50_us=90_000.0, p99_us=120_000.0),
    {**row("picows+json (asyncio)", "flood"), "error": "timed out"},
    row("C floor", "orders-idle", client={"order_n": 10, "order_sent": 10, "order_p50_us": 20.0}),
    row("drbfast place (asyncio)", "orders-idle", client={"order_n": 10, "order_sent": 10, "order_p50_us": 50.0}),
    row("websockets+json (asyncio)", "orders-flood", p99_us=900.0,
        client={"order_n": 3, "order_sent": 4, "order_p50_us": 8e6, "order_late": 3}),
]


def target(results: list[dict[str, Any]], name: str) -> tuple[str, str, bool | None]:
    (hit,) = [t for t in report.targets(results) if t[0] == name]
    return hit


def test_targets_are_computed_from_the_figures_and_say_when_missing() -> None:
    assert target(RESULTS, "drbfast.connect: idle RTT within 1.3x of C (asyncio)") == (
        "drbfast.connect: idle RTT within 1.3x of C (asyncio)", "1.25x", True)
    assert target(RESULTS, "drbfast.connect: idle RTT within 1.15x of C (uvloop)")[2] is False  # 1.20x
    assert target(RESULTS, "drbfast.connect: idle 3.5x lower than websockets+json (asyncio)")[1:] == ("8.0x", True)
    assert target(RESULTS, "drbfast.connect: idle 2.8x lower than aiohttp+json (asyncio)")[1:] == ("2.0x", False)
    assert target(RESULTS, "drbfast.connect: idle p99 within 2x of the C floor's p99 (asyncio)")[1:] == ("2.50x", False)
    assert target(RESULTS, "drbfast.connect lazy lanes=False: few-fields throughput 2.5x websockets+orjson (asyncio)")[1:] == ("3.00x", True)
    # no row, or a failed run, is "not measured", never met
    assert target(RESULTS, "orders: ack p99 under the flood with a slow consumer under 2 ms (asyncio)")[1:] == ("not measured", None)
    assert target(RESULTS, "peers take 50 ms and more under the same flood (lowest peer p99)")[1:] == ("120.0 ms", True)


def test_median_run_keeps_the_middle_run_and_the_spread() -> None:
    runs = [{"p50_us": 9.0, "p99_us": 20.0}, {"p50_us": 7.0, "p99_us": 30.0}, {"p50_us": 8.0, "p99_us": 10.0}]
    chosen = report.median_run(runs, "p50_us")
    assert chosen["p50_us"] == 8.0 and chosen["p99_us"] == 10.0, "the whole median run, not a mix of runs"
    assert chosen["spread"]["p50_us"] == [9.0, 7.0, 8.0] and chosen["median_of"] == 3
    assert report.median_run([{"p50_us": 5.0}, {"p50_us": 6.0}], "p50_us")["p50_us"] == 5.0  # lower median of two


def test_render_states_command_machine_spread_and_failures() -> None:
    text = report.render(run_of(RESULTS))
    assert text.startswith(report.BEGIN) and text.endswith(report.END)
    assert "python -m bench.e2e.runner --results bench/RESULTS.md" in text and "Test CPU" in text
    assert "7.5 [7.4-9.9] (1.25x)" in text, "the median with its spread and the ratio to C"
    assert "| drbfast.connect: idle 2.8x lower than aiohttp+json (asyncio) | 2.0x | no |" in text
    assert "picows+json (asyncio) tcp same-core flood: timed out" in text
    assert "run 3 times" in text
    # a client that shed 99% of a throughput run is credited with what it handled
    assert "| drbfast.connect (asyncio) |" in text and "5,000 (0.05x) <1.0% handled>" in text
    assert "Each mode ran once" in report.render(run_of(RESULTS, repeat=1))
    # the order section: the idle ratio to the C floor; a peer behind its backlog, "3 of 4"
    assert "| drbfast place (asyncio) | orders-idle | 10 | 50.0 |" in text and "| 2.50x | - | - |" in text
    assert "| websockets+json (asyncio) | orders-flood | 3 of 4 | 8000000.0 |" in text and "| - | 900 | 3 |" in text


def test_write_replaces_only_the_generated_part(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\nhand-written intro\n\n## Classifier\n\nkept\n")
    report.write(run_of(RESULTS), md)
    first = md.read_text()
    assert first.count(report.BEGIN) == 1 and "hand-written intro" in first and "kept" in first
    edited = first.replace("## Classifier", "## Classifier (renamed by hand)")
    md.write_text(edited)
    report.write(run_of(RESULTS[:3]), md)
    second = md.read_text()
    assert second.count(report.BEGIN) == 1 and second.count(report.END) == 1
    assert "## Classifier (renamed by hand)" in second, "text outside the markers is kept"
    assert "websockets+json (asyncio)" not in second.split(report.BEGIN)[1].split("### Slow")[0]
