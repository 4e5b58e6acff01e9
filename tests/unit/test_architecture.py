"""The layout's rules, checked: the floors contract (lint-imports), module size, one argument parser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "botkit"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 600
# Modules allowed over MAX_LINES, each with the reason. Keep it short; empty is best.
OVERSIZED: dict[str, str] = {}


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the botkit package found under ``root`` (first on the path: a copy wins over the install)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=120, env=env)


def _copy_tree(dest: Path) -> Path:
    shutil.copytree(PACKAGE, dest / "botkit", ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_real_tree_keeps_every_import_contract() -> None:
    out = _lint_imports(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(("module", "planted"), [
    ("core/drift.py", "from botkit.ops import capacity  # planted: core looking up to ops"),
    ("serving/batching.py", "import botkit.teaching.notebooks  # planted: serving looking up to teaching"),
    ("ops/monitor/report.py", "from botkit.ops.monitor import render  # planted: report importing its renderer"),
])
def test_a_wrong_import_breaks_the_contract(tmp_path: Path, module: str, planted: str) -> None:
    root = _copy_tree(tmp_path)
    target = root / "botkit" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}\n", encoding="utf-8")
    out = _lint_imports(root)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "BROKEN" in out.stdout and "is not allowed to import" in out.stdout
    assert planted.split("  #")[0] not in (PACKAGE / module).read_text(encoding="utf-8")


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_longer_than_the_limit() -> None:
    sizes = {str(p.relative_to(REPO)): _lines(p) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    over = {k: v for k, v in sizes.items() if v > MAX_LINES and k not in OVERSIZED}
    assert not over, f"split these modules (limit {MAX_LINES} lines): {over}"
    largest = max(sizes, key=sizes.__getitem__)
    assert sizes[largest] <= MAX_LINES or largest in OVERSIZED


def test_there_is_one_argument_parser() -> None:
    hits = [f"{p.relative_to(REPO)}:{n}" for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"ArgumentParser\(", line)]
    assert len(hits) == 1 and hits[0].startswith("botkit/cli/__init__.py:"), (
        f"one parser, in botkit/cli/__init__.py (add subcommands in botkit/cli/<area>.py); found: {hits}")
