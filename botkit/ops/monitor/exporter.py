"""Prometheus gauges of a monitor report: a registry, the text format, a textfile, a /metrics server.

:func:`export_gauges` turns checks into a prometheus_client registry with
``botkit_drift_score{check}`` and ``botkit_drift_flagged{check}`` (0/1) plus
``botkit_drift_report_timestamp_seconds``. Prometheus gets them either by scraping
:func:`serve_gauges` (``botkit monitor report --gauges-port 9321``, loopback only;
``deploy/prometheus/prometheus.yml`` has the job) or from a node-exporter textfile written by
:func:`write_textfile` (``--textfile /var/lib/node_exporter/textfile/botkit_drift.prom``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botkit.core.drift import Check
from botkit.ops.monitor.report import MonitorReport

__all__ = ["DEFAULT_GAUGE_PORT", "GaugeServer", "export_gauges", "gauges_text", "serve_gauges", "write_textfile"]

DEFAULT_GAUGE_PORT = 9321


def _checks_of(checks: MonitorReport | Sequence[Check]) -> list[Check]:
    return list(checks.checks) if isinstance(checks, MonitorReport) else list(checks)


def export_gauges(checks: MonitorReport | Sequence[Check], registry: Any = None) -> Any:
    """A prometheus_client registry holding the checks as gauges.

    ``botkit_drift_score{check="..."}`` is the check's value (NaN when a window held too
    little data), ``botkit_drift_flagged{check="..."}`` is 1 when it is an alert, and
    ``botkit_drift_report_timestamp_seconds`` says when the checks were computed (a stale
    value means the monitor stopped running).
    """
    import prometheus_client as pc

    registry = registry or pc.CollectorRegistry(auto_describe=True)
    score = pc.Gauge("botkit_drift_score", "Value of each drift check of the last monitor report.", ["check"],
                     registry=registry)
    flagged = pc.Gauge("botkit_drift_flagged", "1 when a drift check of the last monitor report is an alert.",
                       ["check"], registry=registry)
    stamp = pc.Gauge("botkit_drift_report_timestamp_seconds", "When the last monitor report was computed.",
                     registry=registry)
    for c in _checks_of(checks):
        score.labels(check=c.name).set(float(c.value))
        flagged.labels(check=c.name).set(1.0 if c.flagged else 0.0)
    stamp.set(time.time())
    return registry


def gauges_text(checks: MonitorReport | Sequence[Check]) -> str:
    """The gauges in the Prometheus text exposition format."""
    import prometheus_client as pc

    return pc.generate_latest(export_gauges(checks)).decode()


def write_textfile(checks: MonitorReport | Sequence[Check], path: str | Path) -> Path:
    """Write the gauges for node-exporter's textfile collector (atomically: temp file + rename)."""
    import prometheus_client as pc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pc.write_to_textfile(str(path), export_gauges(checks))
    return path


@dataclass
class GaugeServer:
    """A running /metrics endpoint for the drift gauges; ``update`` swaps in new checks."""

    port: int
    _httpd: Any
    _thread: threading.Thread
    _holder: list

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def update(self, checks: MonitorReport | Sequence[Check]) -> None:
        self._holder[0] = export_gauges(checks)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> GaugeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_gauges(checks: MonitorReport | Sequence[Check], port: int = DEFAULT_GAUGE_PORT,
                 addr: str = "127.0.0.1") -> GaugeServer:
    """Serve the gauges on ``http://127.0.0.1:PORT/metrics`` (port 0: a free one) in a thread."""
    import prometheus_client as pc

    if addr not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to bind {addr}: botkit's servers listen on loopback only")
    holder = [export_gauges(checks)]

    class _Current:  # the registry served is whatever `update` put in last
        def collect(self):
            yield from holder[0].collect()

    registry = pc.CollectorRegistry(auto_describe=False)
    registry.register(_Current())
    httpd, thread = pc.start_http_server(port, addr=addr, registry=registry)
    return GaugeServer(httpd.server_address[1], httpd, thread, holder)
