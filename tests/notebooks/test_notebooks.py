"""The notebooks are part of the product: they run, they follow the house rules, and a failure reads well.

- every notebook in ``notebooks/`` runs end to end with ``smoke=True`` through ``botkit.teaching.notebooks.run``
  (papermill), each in a private home under ``tmp_path``;
- every committed notebook follows the house rules: learning goals first, a ``parameters`` cell with
  ``smoke``, an isolated botkit home before botkit is imported, short code cells, PNG figures, a summary
  and "Try this next" last, and committed executed top to bottom with no errors;
- the runner reports a failing notebook the way CI needs it: exit code, the cell and the exception's
  last line in the JUnit file and the summary; ``record()`` values land in ``metadata.botkit.records``.

The strict replay of the committed outputs (nbval) is a separate pytest run, see ``make test``:
``pytest --nbval notebooks/ --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from botkit.cli import main as botkit_main
from botkit.teaching.notebooks import run

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 30
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

by_notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def test_there_are_notebooks_to_check() -> None:
    assert NOTEBOOKS, f"no notebooks found in {ROOT / 'notebooks'}"


# ------------------------------------------------------------------------------- (a) they run


@pytest.mark.slow
@by_notebook
def test_notebook_runs_in_smoke_mode(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: the notebook's private home goes under tmp_path, so the
    # run touches neither the developer's store nor a replay running at the same time.
    monkeypatch.setenv("BOTKIT_NB_HOME", str(tmp_path / "homes"))
    [result] = run([path], smoke=True, out_dir=tmp_path / "executed", timeout_s=300, progress=False)
    assert result.ok, f"{path.name} failed with smoke=True at {result.error}"
    executed = _read(result.output)
    injected = [c for c in executed.cells if "injected-parameters" in _tags(c)]
    assert injected and "smoke = True" in injected[0].source, "papermill did not inject smoke=True"


# ------------------------------------------------------------------------- (b) the house rules


@by_notebook
def test_opens_with_learning_goals_and_time_needed(path: Path) -> None:
    first = _read(path).cells[0]
    assert first.cell_type == "markdown", "the first cell must be Markdown: title, learning goals, time needed"
    text = first.source.lower()
    assert "learning goals" in text, "the first cell must list the learning goals"
    assert "time needed" in text, "the first cell must say how much time the notebook needs"


@by_notebook
def test_has_one_parameters_cell_that_sets_smoke(path: Path) -> None:
    cells = [c for c in _code_cells(_read(path)) if "parameters" in _tags(c)]
    assert len(cells) == 1, f"expected exactly one code cell tagged 'parameters', found {len(cells)}"
    assert re.search(r"^smoke\s*=\s*False\b", cells[0].source, re.MULTILINE), \
        "the parameters cell must set `smoke = False` (papermill and --smoke override it)"


@by_notebook
def test_first_code_cell_isolates_the_notebook_before_botkit_is_imported(path: Path) -> None:
    first = _code_cells(_read(path))[0].source
    assert "private_home(" in first or "thread_home(" in first or "BOTKIT_HOME" in first, (
        "the first code cell must give the notebook its own home (botkit.teaching.notebooks.private_home or "
        "BOTKIT_HOME/BENTOML_HOME) before botkit.core.config is imported"
    )


@by_notebook
def test_closes_with_a_summary_and_try_this_next(path: Path) -> None:
    last = _read(path).cells[-1]
    assert last.cell_type == "markdown", "the last cell must be Markdown: summary and 'Try this next'"
    text = last.source.lower()
    assert "summary" in text and "try this next" in text, "the last cell needs a summary and 'Try this next'"


@by_notebook
def test_code_cells_are_short(path: Path) -> None:
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(_read(path).cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CODE_LINES]
    assert not long, f"code cells over {MAX_CODE_LINES} lines (cell index, lines): {long}; move logic into botkit"


@by_notebook
def test_figures_are_png_not_svg(path: Path) -> None:
    svg = [i for i, c in enumerate(_read(path).cells) if c.cell_type == "code"
           for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {})]
    assert not svg, f"SVG outputs in cells {svg}: nbval compares SVG and it carries a date; use PNG"


@by_notebook
def test_is_committed_executed_top_to_bottom_without_errors(path: Path) -> None:
    nb = _read(path)
    cells = _code_cells(nb)
    counts = [c.execution_count for c in cells]
    assert None not in counts, f"unexecuted code cells (execution_count None): run `make notebooks`; {counts}"
    assert counts == list(range(1, len(cells) + 1)), f"not run top to bottom in one kernel: {counts}"
    errors = [o.get("ename") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"committed with errors: {errors}"
    injected = [c for c in cells if "injected-parameters" in _tags(c)]
    assert not injected, "committed with papermill's injected parameters: commit the full run (`make notebooks`)"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


# --------------------------------------------------------------------- (c) failures read well


def _write_notebook(path: Path, *sources: str) -> Path:
    nb = v4.new_notebook(cells=[v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_a_failing_notebook_is_reported_with_its_cell_and_the_last_line_of_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write_notebook(tmp_path / "good.ipynb", "from botkit.teaching.notebooks import record",
                           "record('answer', 42)\nrecord('ratio', 0.5)")
    bad = _write_notebook(tmp_path / "bad.ipynb", "orders = 0",
                          "raise ValueError('a first line\\nthe last line of the error')", "print('never runs')")
    out = tmp_path / "out"
    error = "cell 2: ValueError: the last line of the error"

    code = botkit_main(["notebooks", "run", str(good), str(bad), "--out", str(out), "--gate", "answer>=40"])

    assert code == 1, "a failing notebook must fail the run"
    assert f"FAILED {bad}: {error}" in capsys.readouterr().err

    suite = ET.parse(out / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["good"].find("failure") is None
    assert cases["bad"].find("failure").get("message") == error
    assert error in cases["bad"].find("failure").text
    assert {p.get("name"): json.loads(p.get("value")) for p in cases["good"].iter("property")} == \
        {"answer": 42, "ratio": 0.5}

    summary = (out / "summary.md").read_text()
    assert f"| bad.ipynb | FAILED ({error}) |" in summary
    assert "| good.ipynb | ok |" in summary and "answer=42, ratio=0.5" in summary
    assert "1 passed, 1 failed" in summary

    executed_good, executed_bad = _read(out / "good.ipynb"), _read(out / "bad.ipynb")
    assert executed_good.metadata["botkit"]["records"] == {"answer": 42, "ratio": 0.5}
    errors = [o.get("ename") for c in _code_cells(executed_bad) for o in c.outputs if o.output_type == "error"]
    assert errors == ["ValueError"], "the executed copy keeps the error output of the failing cell"


@pytest.mark.slow
def test_a_broken_gate_on_a_recorded_figure_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = "from botkit.teaching.notebooks import record\nrecord('accuracy', 0.5)"
    nb = _write_notebook(tmp_path / "figures.ipynb", source)
    code = botkit_main(["notebooks", "run", str(nb), "--out", str(tmp_path / "out"), "--gate", "accuracy>=0.8"])
    assert code == 1
    assert "GATE FAILED: figures.ipynb: accuracy=0.5 not >= 0.8" in capsys.readouterr().err


# ------------------------------------------------------------------------------ private_home


def test_private_home_points_botkit_and_bentoml_at_a_fresh_folder_of_its_own(tmp_path: Path) -> None:
    # A child interpreter: in this one botkit.core.config is already imported (and private_home refuses).
    script = (
        "import os, sys\n"
        "from botkit.teaching.notebooks import private_home\n"
        "assert 'botkit.core.config' not in sys.modules, 'private_home must not import botkit.core.config'\n"
        "home = private_home('07')\n"
        "(home / 'left-over').write_text('x')\n"
        "home = private_home('07')\n"
        "assert not (home / 'left-over').exists(), 'a second call must start from an empty folder'\n"
        "from botkit.core.config import settings\n"
        "print(home, settings.home, settings.bentoml_home, settings.reports_dir, sep='\\n')\n"
    )
    env = {**os.environ, "BOTKIT_NB_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    home, botkit_home, bentoml_home, reports = map(Path, out.stdout.split())
    assert home == botkit_home == (tmp_path / "07").resolve()
    assert bentoml_home == home / "bentoml"
    assert reports == home / "reports"


def test_private_home_refuses_a_folder_it_did_not_make_and_a_late_call(tmp_path: Path) -> None:
    (tmp_path / "08").mkdir()
    (tmp_path / "08" / "precious.txt").write_text("mine")
    script = "from botkit.teaching.notebooks import private_home\nprivate_home('08')\n"
    env = {**os.environ, "BOTKIT_NB_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0 and "not made by private_home()" in out.stderr
    assert (tmp_path / "08" / "precious.txt").read_text() == "mine"

    from botkit.teaching.notebooks import private_home

    assert "botkit.core.config" in sys.modules  # imported by the test session
    with pytest.raises(RuntimeError, match="restart the kernel"):
        private_home("09")
