"""``botkit monitor`` subcommands: drift and anomaly reports (``report``), scripted traffic (``simulate``)."""

from __future__ import annotations

import argparse
import json
import re
import threading
import time

from botkit.cli._common import EXIT_GATE, Registrar

__all__ = ["register"]

DEFAULT_GAUGE_PORT = 9321  # botkit.ops.monitor.exporter's; repeated so that `botkit -h` imports no monitor code


def when(text: str | None, now: float) -> float | None:
    """Epoch seconds, or relative to now: '-90s', '-15m', '-2h', '-1d'."""
    if text is None:
        return None
    m = re.fullmatch(r"-(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if m:
        return now - float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(text)


def cmd_report(a: argparse.Namespace) -> int:
    from botkit.core.config import settings
    from botkit.ops import monitor

    now = time.time()
    dataset = None
    if a.data:
        from botkit.core.data import load

        dataset = load(a.data, seed=settings.seed)
    rep = monitor.report(since=when(a.since, now), until=when(a.until, now), reference=a.reference,
                         model_tag=a.model, out_dir=a.out, bucket_s=a.bucket_s, dataset=dataset)
    print(rep.summary())
    print(f"report: {rep.paths['dir']}")
    if a.textfile:
        print(f"gauges: {monitor.write_textfile(rep, a.textfile)}")
    if a.gauges_port is not None:
        srv = monitor.serve_gauges(rep, a.gauges_port)
        print(f"serving gauges on {srv.url} (Ctrl-C to stop)", flush=True)
        try:
            if a.serve_s:
                time.sleep(a.serve_s)
            else:
                threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            srv.stop()
    return EXIT_GATE if rep.alerts else 0


def cmd_simulate(a: argparse.Namespace) -> int:
    from botkit.ops import monitor

    sim = monitor.simulate(a.url, normal_s=a.normal_s, shift_s=a.shift_s, fault_s=a.fault_s, rps=a.rps,
                           seed=a.seed, fault_latency_ms=a.fault_latency_ms, fault_mode=a.fault_mode)
    print(json.dumps(sim.to_dict(), indent=2))
    time.sleep(0.5)  # the service's event writer flushes every 50 ms
    for rep in monitor.phase_report(None, sim, bucket_s=a.bucket_s, overall=True).values():
        print(rep.summary())
        print(f"  report: {rep.paths['dir']}")
    return 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    help_ = "drift and anomaly report (`report`), scripted traffic (`simulate`)"
    mo = sub.add_parser("monitor", help=help_, description=help_)
    msub = mo.add_subparsers(dest="monitor_command", metavar="ACTION", required=True)
    r = add("report", cmd_report, "judge a window of the event log; write report files and gauges "
            "(exit 1 when a check is flagged)", parent=msub)
    r.add_argument("--since", help="epoch seconds or relative (-15m, -2h, -1d); default: the first event")
    r.add_argument("--until", help="epoch seconds or relative; default: now")
    r.add_argument("--reference", default="training", help="'training' or 'window:<since>:<until>' (epoch s)")
    r.add_argument("--model", help="model tag for the training reference (default: the one in the events)")
    r.add_argument("--data", help="the model's training data, when not the bundled data (file or folder)")
    r.add_argument("--bucket-s", type=float, default=60.0, help="bucket size in seconds (default: %(default)s)")
    r.add_argument("--out", help="report folder (default: <reports_dir>/monitor/<timestamp>)")
    r.add_argument("--textfile", help="also write the gauges here (node-exporter textfile collector)")
    r.add_argument("--gauges-port", type=int, help=f"serve the gauges on 127.0.0.1:PORT/metrics "
                                                   f"(e.g. {DEFAULT_GAUGE_PORT}) until Ctrl-C")
    r.add_argument("--serve-s", type=float, help="with --gauges-port: stop serving after this many seconds")
    s = add("simulate", cmd_simulate, "drive a live service: normal traffic, topic shift, latency fault",
            parent=msub)
    s.add_argument("--url", required=True, help="e.g. http://127.0.0.1:3000 (loopback)")
    s.add_argument("--normal-s", type=float, default=60.0)
    s.add_argument("--shift-s", type=float, default=40.0)
    s.add_argument("--fault-s", type=float, default=30.0)
    s.add_argument("--rps", type=float, default=20.0)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--fault-latency-ms", type=float, default=250.0)
    s.add_argument("--fault-mode", choices=("auto", "header", "surge"), default="auto")
    s.add_argument("--bucket-s", type=float, default=5.0, help="bucket size of the per-phase reports")
