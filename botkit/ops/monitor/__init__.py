"""Watch the live bot: drift and latency reports from the event log, gauges for Prometheus, fault drills.

Four parts, arrows pointing one way (each imports ``report``; ``report`` imports none of them):

* :mod:`~botkit.ops.monitor.report`: a window of events judged against a reference
  (:func:`~botkit.ops.monitor.report.judge`), data in, data out; the statistics and the two
  decisions about them (noise floors, latency against its own past) are explained there;
* :mod:`~botkit.ops.monitor.render`: the report as JSON, Markdown, HTML and a PNG dashboard;
* :mod:`~botkit.ops.monitor.exporter`: the checks as Prometheus gauges (text, textfile, /metrics);
* :mod:`~botkit.ops.monitor.drills`: scripted traffic and faults against a live service.

This package joins them into the two workflows most callers want: :func:`report` (judge a
window, then write its files) and :func:`phase_report` (one report per phase of a drill).
The command line is ``botkit monitor report|simulate`` (``botkit.cli.monitor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botkit.core.data import Dataset
from botkit.ops.monitor.drills import (
    DELAY_HEADER,
    NEW_TOPIC_REQUESTS,
    FaultInjection,
    Phase,
    SimulationResult,
    inject_latency,
    simulate,
)
from botkit.ops.monitor.exporter import (
    DEFAULT_GAUGE_PORT,
    GaugeServer,
    export_gauges,
    gauges_text,
    serve_gauges,
    write_textfile,
)
from botkit.ops.monitor.render import write_files
from botkit.ops.monitor.report import (
    LATENCY_HISTORY_BUCKETS,
    MonitorReport,
    Reference,
    judge,
    reference_from_events,
    reference_from_training,
)

__all__ = [
    "DEFAULT_GAUGE_PORT",
    "DELAY_HEADER",
    "NEW_TOPIC_REQUESTS",
    "FaultInjection",
    "GaugeServer",
    "MonitorReport",
    "Phase",
    "Reference",
    "SimulationResult",
    "export_gauges",
    "gauges_text",
    "inject_latency",
    "judge",
    "phase_report",
    "reference_from_events",
    "reference_from_training",
    "report",
    "serve_gauges",
    "simulate",
    "write_files",
    "write_textfile",
]


# NB: this function shadows the submodule name ``botkit.ops.monitor.report`` on the package;
# import the module's contents with ``from botkit.ops.monitor.report import ...``.
def report(store: Any = None, *, since: float | None = None, until: float | None = None,
           reference: str | Reference = "training", model_tag: str | None = None,
           out_dir: str | Path | None = None, bucket_s: float = 60.0, label: str = "",
           latency_history: int = LATENCY_HISTORY_BUCKETS, marks: dict[str, tuple[float, float]] | None = None,
           write: bool = True, expected_chats: int | None = None, dataset: Dataset | None = None) -> MonitorReport:
    """Judge the events of ``[since, until)`` against ``reference`` and write the report files.

    The arguments of :func:`~botkit.ops.monitor.report.judge`, plus: ``out_dir`` (default
    ``<reports_dir>/monitor/<timestamp>[-label]``), ``marks`` (named time spans drawn on the
    dashboard) and ``write=False`` to skip the files.
    """
    r = judge(store, since=since, until=until, reference=reference, model_tag=model_tag, bucket_s=bucket_s,
              label=label, latency_history=latency_history, expected_chats=expected_chats, dataset=dataset)
    if write:
        write_files(r, out_dir, marks)
    return r


def phase_report(store: Any, sim: SimulationResult, *, reference: str | Reference = "training",
                 bucket_s: float = 5.0, model_tag: str | None = None, write: bool = True,
                 overall: bool = False) -> dict[str, MonitorReport]:
    """One report per simulated phase (each judged on its own window), plus ``overall`` if asked.

    Each phase report also says how many chats the service answered in that phase and how
    many of them are missing from the event log (``counts["events_missing"]``, expected 0).
    """
    out = {name: report(store, since=p.start, until=p.end, reference=reference, model_tag=model_tag,
                        bucket_s=bucket_s, label=name, write=write, expected_chats=p.answered)
           for name, p in sim.phases.items()}
    if overall and sim.phases:
        first, last = min(p.start for p in sim.phases.values()), max(p.end for p in sim.phases.values())
        out["overall"] = report(store, since=first, until=last, reference=reference, model_tag=model_tag,
                                bucket_s=bucket_s, label="overall", marks=sim.windows(), write=write)
    return out
