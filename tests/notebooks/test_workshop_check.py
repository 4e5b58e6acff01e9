"""The participants' path: `make workshop` + `botkit workshop check`, without root and without system packages.

The check must pass on a laptop that has only Python and the venv (no Prometheus, Chromium, buildah,
HAProxy, Redis: simulated by a PATH that holds the venv alone), prove that a bot trains and answers on
loopback, and name each missing optional part with the exercises that need it, without failing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.teaching import workshop
from botkit.teaching.workshop import readiness

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_workshop_check_passes_without_optional_packages_and_names_what_needs_them(tmp_path: Path) -> None:
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "LANG": "C.UTF-8", "PATH": str(VENV_BIN),
           "BOTKIT_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "true"}
    r = subprocess.run([str(VENV_BIN / "botkit"), "workshop", "check"], capture_output=True, text=True,
                       env=env, timeout=300, cwd=tmp_path)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr[-2000:]
    assert re.search(r"✔ bot on loopback +trained a bot .* answered .* with `\w+`", out), out
    for part in readiness.OPTIONAL_PARTS:
        line = next(ln for ln in out.splitlines() if ln.startswith(f"○ {part.name}"))
        assert "missing" in line and "needed by" in line and "To add it" in line, line
    assert "notebook 08" in out and "exercise 07" in out
    assert "✘" not in out and "4 optional parts missing" in out


def test_format_lines_shows_a_missing_optional_part_without_failing() -> None:
    lines = [workshop.CheckLine("python", True, "Python 3.11.7"),
             workshop.CheckLine("Chromium", False, "missing chromium; needed by ...", optional=True),
             workshop.CheckLine("cluster (HAProxy, Redis)", True, "found", optional=True)]
    text = workshop.format_lines(lines)
    assert "○ Chromium" in text and "✔ cluster (HAProxy, Redis)" in text and "✘" not in text
    assert text.splitlines()[-1] == ("all 1 required checks passed: ready for the workshop; "
                                     "1 optional part missing (○ lines)")


def test_optional_lines_report_present_and_missing_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "promtool"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    got = {name: (ok, detail) for name, ok, detail in readiness.optional_lines()}
    assert got["Prometheus (promtool)"][0] is True
    assert got["container proof"] == (False, got["container proof"][1])
    assert "missing buildah, debootstrap" in got["container proof"][1]


def test_the_participant_path_needs_no_root_and_no_linux_only_calls() -> None:
    """`make workshop` runs only the venv install and the check; the check's code is portable (macOS, WSL2)."""
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^workshop: (.*?) ##.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert target, "the Makefile has no `workshop` target"
    deps, recipe = target.group(1).split(), target.group(2)
    assert deps == ["$(STAMP)"] and "sysdeps" not in recipe
    stamp = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    for text in (recipe, stamp):
        assert not re.search(r"\b(apt-get|apt|sudo|brew|dnf|yum)\b", text), text
    for module in ("machine.py", "readiness.py"):
        source = (ROOT / "botkit" / "teaching" / "workshop" / module).read_text()
        code = re.sub(r'""".*?"""', "", source, flags=re.S)  # docstrings may name what is avoided
        assert not re.search(r"/proc|/sys/|sched_getaffinity|prctl|apt-get", code), module
