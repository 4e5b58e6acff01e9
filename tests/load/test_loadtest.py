"""The load-test tooling end to end: real Locust runs against a real service on loopback.

One model (bundled data, a unique name, promoted to production) and one service are shared by
the module; each run is a few seconds with a handful of users. Locust itself is never
imported here (it monkey-patches the process with gevent): runs go through
``botkit.ops.loadtest`` as subprocesses, and the one look at Locust internals runs in a child.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from botkit.core.config import settings
from botkit.ops.loadtest import (
    LOCUSTFILE,
    SHAPES,
    LoadTestResult,
    check_slo,
    load_slo,
    parse_json_output,
    percentile,
    summarize_stats,
    summary_table,
)

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_tag() -> str:
    """A model on the bundled data (the locustfile's feedback names its intents), promoted to production."""
    from botkit.core.registry import set_stage
    from botkit.ops.pipeline import train_evaluate_register

    tag = train_evaluate_register(name=f"load{uuid.uuid4().hex[:8]}").tag
    set_stage(tag, "production")
    return tag


@pytest.fixture(scope="module")
def service(model_tag: str):
    from botkit.serving.serve import Server

    with Server(model=model_tag) as srv:
        yield srv


def write_slo(path: Path, **thresholds: float | None) -> Path:
    path.write_text("".join(f"{k}: {'null' if v is None else v}\n" for k, v in thresholds.items()))
    return path


GENEROUS = {"max_failure_ratio": 0.0, "max_p95_ms": 30_000, "max_p99_ms": 60_000, "min_rps": None}


def assert_sane(result: LoadTestResult) -> None:
    total = result.summary["total"]
    assert total["requests"] > 0
    assert total["failures"] == 0, result.summary["failures_seen"]
    # Locust rounds times into buckets (147 -> 150), so a percentile may sit a little above the exact max
    assert 0 <= total["p50_ms"] <= total["p95_ms"] <= total["p99_ms"] <= total["max_ms"] * 1.1 + 5
    assert "/chat" in result.summary["endpoints"]
    assert sum(e["requests"] for e in result.summary["endpoints"].values()) == total["requests"]


# ---------------------------------------------------------------------------------------- real runs


def test_short_run_writes_a_sane_report(service, tmp_path: Path) -> None:
    r = run(service.url, users=4, spawn_rate=4, duration_s=5, slo=write_slo(tmp_path / "slo.yaml", **GENEROUS))
    assert r.exit_code == 0, r.slo_lines
    assert_sane(r)
    assert r.out_dir.parent == settings.reports_dir / "loadtest"  # reports/loadtest/<timestamp>/
    for key in ("summary_json", "summary_md", "plot_png", "html", "history_csv"):
        assert r.paths[key].is_file() and r.paths[key].stat().st_size > 0, key
    assert json.loads(r.paths["summary_json"].read_text())["total"] == r.summary["total"]
    assert r.paths["plot_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = r.paths["summary_md"].read_text()
    assert "| /chat |" in md and "**Total**" in md and "SLO met" in md
    assert r.slo_lines[0].startswith("SLO met")
    assert summary_table(r).count("\n") == len(r.summary["endpoints"]) + 2
    # the locustfile's gate and the report computed the same figures from the same stats
    assert f"{r.summary['total']['requests']} requests" in r.slo_lines[0]


def test_impossible_slo_fails_the_run_and_names_the_threshold(model_tag: str, tmp_path: Path) -> None:
    """Also the path where run_loadtest starts (and stops) the service itself."""
    slo = write_slo(tmp_path / "slo.yaml", max_failure_ratio=0.0, max_p95_ms=0.001, max_p99_ms=None)
    r = run(None, model=model_tag, users=2, spawn_rate=2, duration_s=2, slo=slo, out_dir=tmp_path / "out")
    assert r.summary["server"]["started_here"]
    assert r.exit_code != 0
    assert r.summary["slo"]["met"] is False
    assert any("max_p95_ms 0.001" in line for line in r.slo_lines), r.slo_lines
    assert not any("max_failure_ratio" in line for line in r.slo_lines)  # only what is broken
    assert "SLO broken: max_p95_ms" in r.paths["log"].read_text()  # printed by Locust's quitting hook
    assert "max_p95_ms" in r.paths["summary_md"].read_text()


def test_spike_shape_runs_to_its_end(service, tmp_path: Path) -> None:
    r = run(service.url, shape="spike", users=5, duration_s=3, think_time_s=0.05,
            slo=write_slo(tmp_path / "slo.yaml", **GENEROUS), out_dir=tmp_path / "out")
    log = r.paths["log"].read_text()
    assert "Spike: peak 5 users for 3 s" in log
    assert "Shape test updating to 5 users" in log and "Shape test completed" in log
    assert r.exit_code == 0, r.slo_lines
    assert_sane(r)


def test_distributed_two_workers(service, tmp_path: Path) -> None:
    r = run(service.url, users=4, spawn_rate=4, duration_s=4, processes=2,
            slo=write_slo(tmp_path / "slo.yaml", **GENEROUS), out_dir=tmp_path / "out")
    assert r.exit_code == 0, r.slo_lines
    assert_sane(r)
    workers = r.summary["workers"]
    assert len(workers) == 2 and all(n > 0 for n in workers.values()), workers
    assert sum(workers.values()) == r.summary["total"]["requests"]


def run(host, **kwargs) -> LoadTestResult:
    from botkit.ops.loadtest import run_loadtest

    return run_loadtest(host, progress=False, **kwargs)


# ---------------------------------------------------------------------------------------- no server


def test_locust_finds_no_shape_unless_asked() -> None:
    """Locust auto-runs any concrete LoadTestShape in a locustfile; ours must expose none. In a child:
    importing Locust monkey-patches the process."""
    code = f"""
import json, sys
from locust.util.load_locustfile import load_locustfile
users, shape_objs = load_locustfile({str(LOCUSTFILE)!r})
mod = sys.modules["botkit_loadtest_shapes"]
ticks = {{}}
for name in mod.SHAPES:
    s = mod.make(name, users=10, duration_s=100)
    seq = []
    for t in (0, 10, 29, 30, 50, 59, 60, 99, 100):
        s.get_run_time = lambda t=t: t
        tick = s.tick()
        seq.append(None if tick is None else tick[0])
    ticks[name] = seq
print(json.dumps({{"users": sorted(users), "shapes": len(shape_objs), "names": list(mod.SHAPES), "ticks": ticks}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["users"] == ["ChatUser"] and got["shapes"] == 0
    assert tuple(got["names"]) == SHAPES  # botkit.ops.loadtest validates names without importing Locust
    assert got["ticks"]["step"] == [3, 3, 5, 5, 8, 8, 8, 10, None]
    assert got["ticks"]["spike"] == [2, 2, 2, 10, 10, 10, 2, 2, None]
    assert got["ticks"]["soak"] == [10] * 8 + [None]


def test_figures_follow_locusts_own_algorithm() -> None:
    # Locust's --json entries: string bucket keys, raw counters only
    entries = [
        {"name": "/chat", "method": "POST", "start_time": 100.0, "last_request_timestamp": 110.0, "num_requests": 100,
         "num_none_requests": 0, "num_failures": 2, "total_response_time": 2000.0, "min_response_time": 3.2,
         "max_response_time": 480.4, "response_times": {"10": 90, "150": 8, "480": 2}},
        {"name": "/feedback", "method": "POST", "start_time": 101.0, "last_request_timestamp": 109.0,
         "num_requests": 10, "num_none_requests": 0, "num_failures": 0, "total_response_time": 50.0,
         "min_response_time": 1.0, "max_response_time": 9.0, "response_times": {"5": 10}},
    ]
    s = summarize_stats(entries)
    assert s["window_s"] == 10.0
    assert s["total"]["requests"] == 110 and s["total"]["rps"] == 11.0
    assert s["endpoints"]["/chat"]["p50_ms"] == 10 and s["endpoints"]["/chat"]["p95_ms"] == 150
    assert s["endpoints"]["/chat"]["p99_ms"] == 480
    # Locust: with 90 of 100 requests at 10 ms, the 90th percentile still reports the next bucket up
    assert percentile({"10": 90, "150": 8, "480": 2}, 100, 0.90) == 150
    slo = {"max_failure_ratio": 0.01, "max_p95_ms": 100.0, "max_p99_ms": None, "min_rps": 20.0,
           "endpoints": {"/feedback": {"max_p95_ms": 1.0}, "/chat_batch": {"max_p95_ms": 1.0}}}
    lines = check_slo(s, slo)
    assert [line.split(":")[1].split()[0] for line in lines] == [
        "max_failure_ratio", "max_p95_ms", "min_rps", "endpoints./feedback.max_p95_ms", "endpoints./chat_batch"]
    assert check_slo(summarize_stats([]), slo) == ["SLO broken: no requests were made, so no threshold can be checked"]


def test_slo_file_and_json_parsing(tmp_path: Path) -> None:
    assert load_slo()["max_p95_ms"] > 0  # the shipped loadtests/slo.yaml is valid
    with pytest.raises(ValueError, match="max_p95"):
        load_slo(write_slo(tmp_path / "typo.yaml", max_p95=5))
    with pytest.raises(ValueError, match="not found"):
        load_slo(tmp_path / "missing.yaml")
    # with --processes every forked worker prints its own empty list first
    assert parse_json_output('[]\n[]\n[\n {"name": "/chat"}\n]\n') == [{"name": "/chat"}]
    with pytest.raises(ValueError):
        parse_json_output("Traceback ...")
