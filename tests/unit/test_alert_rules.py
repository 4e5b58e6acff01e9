"""The Prometheus files: valid for the real promtool, and every alert unit-tested both ways."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = DEPLOY / "alerts.yml"
ALERTS_TEST = DEPLOY / "alerts_test.yml"
CONFIG = DEPLOY / "prometheus.yml"
EXPECTED = {"BotkitHighErrorRatio", "BotkitP95LatencyOverSLO", "BotkitFallbackRateSpike", "BotkitDriftScoreHigh",
            "BotkitNoTraffic", "BotkitFeedbackNegative", "BotkitEventsDropped", "BotkitEventWriterStuck"}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: run `make sysdeps` (installs Debian's prometheus)")
    return subprocess.run([exe, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_promtool_check_rules():
    r = _promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in r.stdout


def test_promtool_test_rules():
    r = _promtool("test", "rules", str(ALERTS_TEST))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_promtool_check_config():
    r = _promtool("check", "config", str(CONFIG))
    assert r.returncode == 0, r.stdout + r.stderr


def test_scrape_config_targets_the_service_every_5s():
    doc = yaml.safe_load(CONFIG.read_text())
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    botkit = jobs["botkit"]
    assert botkit["scrape_interval"] == "5s" and botkit.get("metrics_path", "/metrics") == "/metrics"
    assert botkit["static_configs"][0]["targets"] == ["127.0.0.1:3000"]
    assert doc["rule_files"] == ["alerts.yml"]
    assert "botkit-drift" in jobs  # the monitor's gauges (python -m botkit.ops.monitor report --gauges-port 9321)


def test_every_alert_has_summary_description_and_a_one_sentence_runbook():
    rules = _rules()
    assert {r["alert"] for r in rules} == EXPECTED
    for r in rules:
        notes = r["annotations"]
        assert notes["summary"] and notes["description"], r["alert"]
        runbook = notes["runbook"].strip()
        assert runbook.endswith(".") and runbook.count(". ") == 0, (r["alert"], runbook)
        assert r["labels"]["severity"] in ("page", "ticket")


def test_every_alert_is_tested_firing_and_not_firing():
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for case in doc["tests"]:
        for t in case.get("alert_rule_test", []):
            (firing if t.get("exp_alerts") else silent).add(t["alertname"])
    assert firing == EXPECTED, EXPECTED - firing
    assert silent == EXPECTED, EXPECTED - silent
