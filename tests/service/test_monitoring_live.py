"""Monitoring against the real service: a scripted drill judged per phase, and a real Prometheus scraping it.

One server for the module, with its own event store (``BOTKIT_HOME`` points at a temp dir) so
that the reports see only this drill's traffic, and fault injection switched on for when the
service honours ``X-Botkit-Delay-Ms`` (until then simulate() falls back to a traffic surge).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from botkit.ops import monitor
from botkit.serving.events import SQLiteStore
from botkit.serving.serve import Server, free_port

pytestmark = pytest.mark.slow

BUCKET_S = 2.0


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("monitor-home")


@pytest.fixture(scope="module")
def live(bot_tag: str, home: Path) -> Iterator[Server]:
    srv = Server(model=bot_tag, workers=2, batching=True, access_log=False,
                 env={"BOTKIT_HOME": str(home), "BOTKIT_FAULT_INJECTION": "true"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def drill(live: Server, home: Path):
    """8 s normal, 8 s shift, 6 s latency fault at 20 messages/s; one report per phase."""
    sim = monitor.simulate(live.url, normal_s=8, shift_s=8, fault_s=6, rps=20, seed=42, fault_latency_ms=150,
                           progress=False)
    time.sleep(0.5)  # the workers' event writers flush every 50 ms
    with SQLiteStore(home / "events.sqlite3") as store:
        reports = monitor.phase_report(store, sim, bucket_s=BUCKET_S)
    for name, rep in reports.items():
        print(f"{name}: {rep.summary()}")
    return sim, reports


def test_drill_sends_every_phase(drill):
    sim, _ = drill
    assert list(sim.phases) == ["normal", "shift", "fault"]
    for name, expected in (("normal", 160), ("shift", 160), ("fault", 120)):
        p = sim.phases[name]
        assert p.sent == expected and p.failed == 0, (name, p)
        assert p.feedback_sent > 0 and p.feedback_failed == 0, (name, p)
    starts = [p.start for p in sim.phases.values()]
    ends = [p.end for p in sim.phases.values()]
    assert starts == sorted(starts) and all(e > s for s, e in zip(starts, ends, strict=True))
    assert sim.fault_mode in ("header", "surge")


def test_every_answered_chat_is_in_the_event_log(drill):
    _, reports = drill
    for name, rep in reports.items():
        assert rep.counts["answered"] >= rep.counts["chats"] > 0, (name, rep.counts)
        assert rep.counts["events_missing"] == 0, (name, rep.counts)


def test_normal_phase_is_not_flagged(drill):
    _, reports = drill
    normal = reports["normal"]
    assert normal.counts["chats"] == 160
    assert normal.alerts == [], normal.summary()


def test_topic_shift_is_flagged(drill):
    _, reports = drill
    shift = reports["shift"]
    for name in ("intent_chi2_p", "fallback_rate", "oov_increase"):
        assert shift.flagged(name), shift.summary()


def test_latency_fault_is_flagged(drill):
    _, reports = drill
    fault = reports["fault"]
    assert fault.flagged("latency_anomalies"), fault.summary() + f"\np95 per bucket: {fault.series['p95_ms']}"
    for rep in reports.values():
        assert {"json", "md", "html", "png"} <= set(rep.paths) and rep.paths["html"].is_file()


# ------------------------------------------------------------------------------------ Prometheus


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _query(base: str, expr: str) -> float | None:
    doc = _get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    result = doc["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _service_total(url: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "botkit_chat_requests_total")


@pytest.fixture
def prometheus(live: Server, tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("the prometheus binary is missing: run `make sysdeps` (installs Debian's prometheus)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: botkit\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
        f"    metrics_path: /metrics\n    static_configs:\n      - targets: ['127.0.0.1:{live.port}']\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_prometheus_scrapes_the_chat_counter(live: Server, prometheus: str, tmp_path: Path):
    sent = 0
    with httpx.Client(base_url=live.url, timeout=10) as client:
        for text in ("hi there", "where is my parcel", "i want a refund", "what's the capital of peru") * 5:
            assert client.post("/chat", json={"message": text}).status_code == 200
            sent += 1
    expected = _service_total(live.url)  # every chat this server answered, this test's 20 included
    assert expected >= sent

    deadline = time.monotonic() + 45
    health, value = "", None
    while time.monotonic() < deadline:
        try:
            targets = _get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            health = targets[0]["health"] if targets else ""
            if health == "up":
                value = _query(prometheus, "sum(botkit_chat_requests_total)")
                if value is not None and value >= expected:
                    break
        except OSError:
            pass  # Prometheus still starting
        time.sleep(0.5)
    log = (tmp_path / "prometheus.log").read_text(errors="replace")[-2000:]
    assert health == "up", f"target never came up; prometheus log:\n{log}"
    assert value is not None and value >= sent, f"prometheus saw {value}, sent {sent}"
    assert value == expected, f"prometheus saw {value}, the service's /metrics says {expected}"
