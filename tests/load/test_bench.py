"""`make bench` end to end, tiny: two peers for a few seconds, the summary's shape and the rendered RESULTS.md."""

from __future__ import annotations

import json

import psutil
import pytest

from botkit.ops.bench import run
from botkit.ops.bench.peers import PEERS, select

pytestmark = pytest.mark.slow

FIGURES = ("rps", "p50_ms", "p95_ms", "p99_ms", "failures", "server_cores")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_bench_measures_two_peers_and_renders_the_results(tmp_path):
    results_md = tmp_path / "RESULTS.md"
    s = run(peers="naive_2w,botkit_default", users=8, seconds=3, warmup_s=1, rounds=1, curve_users=(1,),
            curve_s=2, out_dir=tmp_path / "bench", results_md=results_md)

    on_disk = json.loads((tmp_path / "bench" / "summary.json").read_text())
    assert on_disk["peers"].keys() == s["peers"].keys() == {"naive_2w", "botkit_default"}
    for name, peer in on_disk["peers"].items():
        assert set(FIGURES) <= set(peer), name
        assert peer["rps"] > 0 and peer["p50_ms"] > 0 and peer["p99_ms"] >= peer["p50_ms"], (name, peer)
        assert peer["failures"] == 0 and peer["server_cores"] > 0, (name, peer)
    d = on_disk["default_vs_naive"]
    assert d["throughput_ratio"] > 0 and len(d["p99_ms"]) == 2 and d["failures"] == 0
    assert d["single_user_p50_ms"] > 0
    assert {t["target"].split(" ")[0] for t in on_disk["targets"]} >= {"throughput", "p99", "0", "single-user"}

    text = results_md.read_text()
    assert "| **botkit default** |" in text and "naive FastAPI, 2 workers" in text
    assert on_disk["machine"]["commit"] in text and (tmp_path / "bench.png").stat().st_size > 10_000
    pids = [pid for rows in on_disk["per_round"].values() for r in rows for pid in r["extra"]["server_pids"]]
    assert len(pids) >= 4, "each server's tree: the parent and its workers"
    assert not [pid for pid in pids if _alive(pid)], "every server's process tree is stopped after its row"


def test_every_peer_has_a_unique_key_and_selection_keeps_the_table_order():
    keys = [p.key for p in PEERS]
    assert len(set(keys)) == len(keys)
    assert [p.key for p in select("ceiling,naive_1w")] == ["naive_1w", "ceiling"]
    with pytest.raises(ValueError, match="unknown peer"):
        select("nope")
