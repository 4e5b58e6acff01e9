"""Process hygiene: SIGTERM to ``botkit serve`` stops BentoML's whole tree, workers included
(they run in sessions of their own), and the workers flush their event writers. (SIGINT takes
the same handler; one signal keeps the test inside the layer's time budget.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from botkit.serving.serve import free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_sigterm_to_botkit_serve_leaves_no_bentoml_process(bot_tag: str, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "server.log"
    botkit = Path(sys.executable).with_name("botkit")
    proc = subprocess.Popen([str(botkit), "serve", "--model", bot_tag, "--port", str(port), "--workers", "1",
                             "--log", str(log)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", 90, proc)
        for line in proc.stdout:  # botkit serve says "serving" once every worker is ready
            if line.startswith(b"serving "):
                break
        assert httpx.post(f"http://127.0.0.1:{port}/chat", json={"message": "hi"}, timeout=10).status_code == 200
        deadline = time.monotonic() + 30
        while True:  # the arbiter and its worker (a session of its own)
            tree = psutil.Process(proc.pid).children(recursive=True)
            if len(tree) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(tree) >= 2, tree
        assert any(os.getsid(p.pid) != os.getsid(proc.pid) for p in tree)  # a worker in a session of its own
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
        _gone, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
        assert "Completed cleanup hook: _flush_events" in log.read_text()  # the writer was flushed
    finally:
        if proc.poll() is None:
            proc.kill()
