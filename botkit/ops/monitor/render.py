"""Render a :class:`~botkit.ops.monitor.report.MonitorReport` as files a person reads.

``report.json`` (the data), ``report.md``, ``report.html`` (self-contained, the dashboard
embedded) and ``dashboard.png`` (matplotlib, without pyplot) go to
``<reports_dir>/monitor/<timestamp>[-label]/`` unless a folder is given.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from botkit.core import drift
from botkit.core.config import settings
from botkit.ops.monitor.report import FALLBACK_MAX_INCREASE, MonitorReport, _fmt, _iso

__all__ = ["dashboard_png", "html_page", "markdown", "write_files"]


def write_files(r: MonitorReport, out_dir: str | Path | None = None,
                marks: dict[str, tuple[float, float]] | None = None) -> dict[str, Path]:
    """Write the four files of ``r`` (``marks``: named time spans drawn on the dashboard); sets ``r.paths``."""
    if r.sample is None or r.window is None:
        raise ValueError("this report carries no samples to draw (made by judge()?)")
    out = Path(out_dir) if out_dir is not None else settings.new_report_dir("monitor", r.label)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "dashboard.png"
    png.write_bytes(dashboard_png(r, marks or {}))
    r.paths = {"dir": out, "json": out / "report.json", "md": out / "report.md", "html": out / "report.html",
               "png": png}
    r.paths["json"].write_text(json.dumps(r.to_dict(), indent=2, allow_nan=False) + "\n")
    r.paths["md"].write_text(markdown(r))
    r.paths["html"].write_text(html_page(r, png.read_bytes()))
    return r.paths


@dataclass
class _Frame:
    """What every time panel shares: bucket positions, the anomalous buckets, marks and flagged checks."""

    r: MonitorReport
    marks: dict[str, tuple[float, float]]
    unit: str
    scale: float
    x: np.ndarray
    bw: float
    anomalous: list[int]

    @property
    def mid(self) -> np.ndarray:
        return self.x + self.bw / 2

    def decorate(self, ax) -> None:
        for i in self.anomalous:
            ax.axvspan(self.x[i], self.x[i] + self.bw, color="red", alpha=0.18, lw=0)
        for name, (start, _end) in self.marks.items():
            ax.axvline((start - self.r.since) / self.scale, color="grey", ls=":", lw=1)
            ax.text((start - self.r.since) / self.scale, 1.0, f" {name}", transform=ax.get_xaxis_transform(),
                    fontsize=8, va="top", color="dimgrey")
        ax.set_xlabel(f"{self.unit} since {_iso(self.r.since)}")
        ax.grid(alpha=0.3)

    def title(self, ax, text: str, *names: str) -> None:
        bad = [n for n in names if any(c.name == n and c.flagged for c in self.r.checks)]
        ax.set_title(text + (f"  [FLAGGED: {', '.join(bad)}]" if bad else ""), color="crimson" if bad else "black",
                     fontsize=10)


def dashboard_png(r: MonitorReport, marks: dict[str, tuple[float, float]]) -> bytes:
    """Six panels: traffic, latency, fallback rate, intent mix, confidence, feedback."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    assert r.sample is not None and r.window is not None
    unit, scale = ("min", 60.0) if r.until - r.since > 1800 else ("s", 1.0)
    x = (np.array(r.series["t"], dtype=float) - r.since) / scale
    f = _Frame(r, marks, unit, scale, x, float(r.counts["bucket_s"]) / scale,
               [i for i, a in enumerate(r.series["latency_anomaly"]) if a])
    fig = Figure(figsize=(14, 12), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2)
    alert_text = ", ".join(r.alert_names) if r.alerts else "none"
    fig.suptitle(f"botkit monitor {r.label}  {_iso(r.since)} .. {_iso(r.until)}  (reference {r.sample.name})\n"
                 f"alerts: {alert_text}", color="crimson" if r.alerts else "black", fontsize=12)
    _traffic(axes[0, 0], f)
    _latency(axes[0, 1], f)
    _fallback(axes[1, 0], f)
    _intent_mix(axes[1, 1], f)
    _confidence(axes[2, 0], f)
    _feedback(axes[2, 1], f)
    # fixed margins: tight_layout would cost more than the rest of the report together
    fig.subplots_adjust(left=0.06, right=0.98, top=0.91, bottom=0.05, hspace=0.38, wspace=0.34)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _traffic(ax, f: _Frame) -> None:
    ax.bar(f.x, f.r.series["chats"], width=f.bw, align="edge", color="steelblue")
    ax.set_ylabel("chat messages per bucket")
    f.title(ax, f"traffic ({float(f.r.counts['bucket_s']):g} s buckets)")
    f.decorate(ax)


def _latency(ax, f: _Frame) -> None:
    s = f.r.series
    for key, style in (("p50_ms", "-"), ("p95_ms", "-"), ("p99_ms", "--")):
        ax.plot(f.mid, s[key], style, marker=".", label=key.replace("_ms", ""))
    if f.anomalous:
        ax.plot(f.mid[f.anomalous], np.array(s["p95_ms"])[f.anomalous], "rv", ms=9, label="anomalous p95")
    ax.set_ylabel("latency in service (ms)")
    ax.legend(fontsize=8)
    f.title(ax, "latency per bucket", "latency_anomalies")
    f.decorate(ax)


def _fallback(ax, f: _Frame) -> None:
    ref, s = f.r.sample, f.r.series
    assert ref is not None
    fr = np.array(s["fallback_rate"], dtype=float)
    ax.plot(f.mid, fr, marker="o", color="darkorange", label="current")
    ax.axhline(ref.fallback_rate, color="grey", ls="-", lw=1, label=f"reference {ref.fallback_rate:.2f}")
    limit = ref.fallback_rate + FALLBACK_MAX_INCREASE
    ax.axhline(limit, color="crimson", ls="--", lw=1, label=f"reference + {FALLBACK_MAX_INCREASE:g}")
    high = [i for i, (n, rate) in enumerate(zip(s["chats"], fr, strict=True))
            if n and drift.rate_change("fallback_rate", ref.fallbacks, ref.n, round(rate * n), n,
                                       max_increase=FALLBACK_MAX_INCREASE).flagged]
    if high:
        ax.plot(f.mid[high], fr[high], "o", color="crimson", ms=9, mfc="none", mew=2, label="significant rise")
    ax.set_ylim(0, 1)
    ax.set_ylabel("fallback rate")
    ax.legend(fontsize=8)
    f.title(ax, "fallback rate per bucket", "fallback_rate")
    f.decorate(ax)


def _intent_mix(ax, f: _Frame) -> None:
    ref, w = f.r.sample, f.r.window
    assert ref is not None and w is not None
    cur_mix, ref_mix = Counter(w.intents), Counter(ref.intents)
    cur_n, ref_n = max(1, w.n), max(1, ref.n)
    names = sorted(set(cur_mix) | set(ref_mix), key=lambda k: -max(cur_mix[k] / cur_n, ref_mix[k] / ref_n))[:12]
    pos = np.arange(len(names))
    ax.barh(pos - 0.2, [ref_mix[k] / ref_n for k in names], height=0.4, color="grey", label="reference")
    ax.barh(pos + 0.2, [cur_mix[k] / cur_n for k in names], height=0.4, color="steelblue", label="current")
    ax.set_yticks(pos, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of messages")
    ax.legend(fontsize=8)
    f.title(ax, "intent mix, top 12", "intent_chi2_p", "intent_js_distance", "intent_psi")


def _confidence(ax, f: _Frame) -> None:
    ref, w = f.r.sample, f.r.window
    assert ref is not None and w is not None
    bins = np.linspace(0, 1, 21)
    for values, color, name in ((np.asarray(ref.confidences), "grey", "reference"),
                                (w.confidences, "steelblue", "current")):
        if len(values):
            ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), histtype="step", lw=2,
                    color=color, label=f"{name} (n={len(values)})")
    ax.set_xlabel("confidence of the top intent")
    ax.set_ylabel("share of messages")
    ax.legend(fontsize=8)
    f.title(ax, "confidence", "confidence_ks")


def _feedback(ax, f: _Frame) -> None:
    s = f.r.series
    ax.bar(f.x, s["feedback_up"], width=f.bw, align="edge", color="seagreen", label="up")
    ax.bar(f.x, [-d for d in s["feedback_down"]], width=f.bw, align="edge", color="crimson", label="down")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("votes per bucket (down below 0)")
    ax.legend(fontsize=8)
    f.title(ax, "user feedback", "feedback_drop")
    f.decorate(ax)


def _check_rows(r: MonitorReport) -> list[tuple[str, str, str, str, str]]:
    return [(c.name, _fmt(c.value), _fmt(c.threshold), "FLAGGED" if c.flagged else "ok", c.meaning) for c in r.checks]


def _bucket_rows(r: MonitorReport) -> list[tuple[str, ...]]:
    s = r.series
    return [(_iso(s["t"][i])[11:23], str(s["chats"][i]), _fmt(s["p50_ms"][i]), _fmt(s["p95_ms"][i]),
             _fmt(s["p99_ms"][i]), _fmt(s["fallback_rate"][i]), f"{s['feedback_up'][i]}/{s['feedback_down'][i]}",
             "ANOMALY" if s["latency_anomaly"][i] else "")
            for i in range(len(s["t"]))]


_BUCKET_HEAD = ("bucket (UTC)", "chats", "p50 ms", "p95 ms", "p99 ms", "fallback", "up/down", "latency")
_MAX_TABLE_BUCKETS = 120


def _delivery(c: dict[str, Any]) -> str:
    if "answered" not in c:
        return ""
    return f"; {c['answered']} answered by the service, {c['events_missing']} of them missing from the event log"


def markdown(r: MonitorReport) -> str:
    """The report as Markdown (the dashboard linked as dashboard.png next to it)."""
    ref, c = r.reference, r.counts
    lines = [f"# botkit monitor report {r.label}".rstrip(), "",
             f"- window: {_iso(r.since)} .. {_iso(r.until)} ({c['buckets']} buckets of {c['bucket_s']:g} s)",
             f"- reference: `{ref['name']}`: {ref['description']}",
             f"- traffic: {c['chats']} chat messages, {c['feedback']} feedback votes; fallback rate "
             f"{_fmt(c['fallback_rate'])} (reference {_fmt(ref['fallback_rate'])}), OOV rate {_fmt(c['oov_rate'])} "
             f"(reference {_fmt(ref['oov_rate'])}){_delivery(c)}",
             f"- latency in service: p50 {_fmt(c['latency_ms']['p50'])} ms, p95 {_fmt(c['latency_ms']['p95'])} ms, "
             f"p99 {_fmt(c['latency_ms']['p99'])} ms",
             f"- **alerts: {', '.join(r.alert_names) if r.alerts else 'none'}**", "",
             "## Checks", "", "| check | value | threshold | status | meaning |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in _check_rows(r)]
    lines += ["", "## Per bucket", ""]
    if len(r.series["t"]) <= _MAX_TABLE_BUCKETS:
        lines += [f"| {' | '.join(_BUCKET_HEAD)} |", "|" + "---|" * len(_BUCKET_HEAD)]
        lines += [f"| {' | '.join(row)} |" for row in _bucket_rows(r)]
    else:
        lines.append(f"{len(r.series['t'])} buckets: see report.json for the series.")
    lines += ["", "## Dashboard", "", "![dashboard](dashboard.png)", ""]
    return "\n".join(lines)


def html_page(r: MonitorReport, png: bytes) -> str:
    """The report as one self-contained HTML page, ``png`` embedded."""
    e = html.escape
    ref, c = r.reference, r.counts

    def table(head: Sequence[str], rows: Sequence[Sequence[str]], status_col: int | None = None) -> str:
        out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
        for row in rows:
            cls = ' class="bad"' if status_col is not None and row[status_col] in ("FLAGGED", "ANOMALY") else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>")
        return "\n".join([*out, "</table>"])

    alerts = ", ".join(r.alert_names) if r.alerts else "none"
    buckets = (table(_BUCKET_HEAD, _bucket_rows(r), 7) if len(r.series["t"]) <= _MAX_TABLE_BUCKETS
               else f"<p>{len(r.series['t'])} buckets: see report.json for the series.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>botkit monitor {e(r.label)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}} tr.bad td{{background:#fde2e2}}
.alerts{{font-weight:bold;color:{'#b00' if r.alerts else '#070'}}} img{{max-width:100%}}</style></head><body>
<h1>botkit monitor report {e(r.label)}</h1>
<ul><li>window: {e(_iso(r.since))} .. {e(_iso(r.until))} ({c['buckets']} buckets of {c['bucket_s']:g} s)</li>
<li>reference: <code>{e(ref['name'])}</code>: {e(ref['description'])}</li>
<li>traffic: {c['chats']} chat messages, {c['feedback']} feedback votes; fallback rate {e(_fmt(c['fallback_rate']))}
(reference {e(_fmt(ref['fallback_rate']))}), OOV rate {e(_fmt(c['oov_rate']))}
(reference {e(_fmt(ref['oov_rate']))}){e(_delivery(c))}</li>
<li>latency in service: p50 {e(_fmt(c['latency_ms']['p50']))} ms, p95 {e(_fmt(c['latency_ms']['p95']))} ms,
p99 {e(_fmt(c['latency_ms']['p99']))} ms</li></ul>
<p class="alerts">alerts: {e(alerts)}</p>
<h2>Checks</h2>
{table(("check", "value", "threshold", "status", "meaning"), _check_rows(r), 3)}
<h2>Per bucket</h2>
{buckets}
<h2>Dashboard</h2>
<img alt="dashboard" src="data:image/png;base64,{base64.b64encode(png).decode()}">
</body></html>
"""
