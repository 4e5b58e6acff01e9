"""Background Locust load through the load balancer, for rollouts and canaries.

``with Traffic(lb_url, users=8) as t: ...`` runs Locust headless until the block ends, then
reports what every client saw (requests, failures by endpoint): the "0 failed requests" of a
rolling update is this count, taken from Locust's ``--json`` summary (complete, unlike its CSVs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from botkit.core.config import PACKAGE_DIR, settings
from botkit.ops.loadtest import locust_command, parse_json_output, summarize_stats

__all__ = ["Traffic"]

# The Locust script lives with the other load scripts (it reads its own RELEASES_* variables, as Locust scripts do).
LOCUSTFILE = PACKAGE_DIR.parent / "loadtests" / "releases_locustfile.py"


class Traffic:
    """Locust in a subprocess; ``stop()`` returns the summary (``total``: requests, failures, rps...)."""

    def __init__(self, host: str, *, users: int = 8, headers: dict[str, str] | None = None,
                 feedback_prob: float = 0.2, wait_s: float = 0.05, max_s: float = 900.0,
                 out_dir: Path | None = None) -> None:
        self.host, self.users, self.max_s = host, users, max_s
        self.env = {**os.environ, **settings.env(), "RELEASES_HEADERS": json.dumps(headers or {}),
                    "RELEASES_FEEDBACK_PROB": str(feedback_prob), "RELEASES_WAIT_S": str(wait_s)}
        self.out_dir = out_dir
        self.proc: subprocess.Popen | None = None
        self.summary: dict[str, Any] | None = None
        self.started = 0.0

    def start(self) -> Traffic:
        cmd = [*locust_command(), "-f", str(LOCUSTFILE), "--headless", "--host", self.host, "-u", str(self.users),
               "-r", str(self.users), "-t", f"{int(self.max_s)}s", "--json", "--only-summary",
               "--loglevel", "ERROR", "--stop-timeout", "5"]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, Any]:
        """SIGTERM (Locust then stops its users and prints the JSON summary) and parse it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return self.summary or {}
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        entries = parse_json_output(out)
        self.summary = summarize_stats(entries)
        self.summary["duration_s"] = round(time.monotonic() - self.started, 2)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "locust.json").write_text(out)
            (self.out_dir / "locust.stderr.txt").write_text(err[-20000:])
        return self.summary

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
