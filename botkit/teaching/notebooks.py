"""Execute notebooks with papermill and report like a test runner: for our notebooks and yours.

A notebook in CI is a test: it passes or fails at a cell, it takes time, and it produces
figures a pipeline may gate on. ``run`` executes each notebook (optionally with
``smoke=True``), writes the executed copy, a JUnit XML file that CI systems read and a
Markdown summary; ``record`` is what a notebook calls to publish a figure such as its accuracy,
which ends up in the executed notebook's metadata (``metadata.botkit.records``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NotebookResult", "collect_records", "find_notebooks", "private_home", "record", "run", "write_junit",
    "write_summary",
]

RECORD_KEY = "botkit_record"
HOME_MARKER = ".botkit-notebook-home"


# botkit modules private_home() may find loaded: none of them keeps a reference to the old settings.
_PRELOADED_OK = frozenset({"botkit", "botkit.core", "botkit.core.config", "botkit.teaching",
                           "botkit.teaching.notebooks"})
_OWN_CONFIG = False  # True once private_home() itself imported botkit.core.config


def private_home(name: str, *, fresh: bool = True) -> Path:
    """Give the calling notebook a botkit home of its own; call it before anything imports ``botkit.core.config``.

    Points ``BOTKIT_HOME``, ``BENTOML_HOME`` (under it) and ``BOTKIT_REPORTS_DIR`` at
    ``<nb_home>/<name>`` (``Settings.nb_home``, i.e. ``$BOTKIT_NB_HOME``; by default
    ``<tempdir>/botkit-nb``), overriding what ``make lab`` exports on purpose: a notebook never
    writes to the user's model store, notebooks run in parallel, and with ``fresh`` the folder is
    emptied first, so every run starts from the same state and prints the same output. Only a
    folder this function created (it leaves a marker file) is ever emptied. It then rebuilds
    ``botkit.core.config.settings`` from the new environment, so it must come first: a notebook
    that imported botkit's config or any module using it gets a RuntimeError, not a
    half-isolated store.
    """
    global _OWN_CONFIG

    early = sorted(m for m in sys.modules if m.startswith("botkit.") and m not in _PRELOADED_OK)
    if early or ("botkit.core.config" in sys.modules and not _OWN_CONFIG):
        raise RuntimeError("botkit.core.config is already imported, so its store is fixed: "
                           "restart the kernel and run the notebook from the top")
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"notebook home name {name!r}: use letters, digits, '.', '-' or '_'")
    from botkit.core import config

    _OWN_CONFIG = True
    home = (config.Settings.from_env().nb_home or Path(tempfile.gettempdir()) / "botkit-nb") / name
    home = home.expanduser().resolve()
    if fresh and home.exists():
        if not (home / HOME_MARKER).exists() and any(home.iterdir()):
            raise RuntimeError(f"{home} exists and was not made by private_home(): not emptying it")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / HOME_MARKER).touch()
    os.environ.update(BOTKIT_HOME=str(home), BENTOML_HOME=str(home / "bentoml"),
                      BOTKIT_REPORTS_DIR=str(home / "reports"), BENTOML_DO_NOT_TRACK="true")
    config.settings = config.Settings.from_env()  # what every botkit module imported from now on sees
    return home


def record(name: str, value: object) -> None:
    """Publish a figure from inside a notebook (JSON-serialisable value).

    The value travels in the output's metadata, which nbval does not compare, so a measured
    timing does not break the strict replay; the visible text names the figure only.
    """
    from IPython.display import publish_display_data

    json.dumps(value)  # fail early, in the notebook, on a value a pipeline could not read
    publish_display_data(data={"text/plain": f"recorded {name}"}, metadata={RECORD_KEY: {name: value}})


def collect_records(nb) -> dict[str, object]:
    """All values a notebook recorded, in order (a later record of a name wins)."""
    out: dict[str, object] = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []) or []:
            out.update((o.get("metadata") or {}).get(RECORD_KEY, {}))
    return out


@dataclass
class NotebookResult:
    path: Path
    output: Path
    ok: bool
    seconds: float
    records: dict = field(default_factory=dict)
    error: str = ""  # "cell N: ErrorName: last line" when it failed


def find_notebooks(paths: Sequence[str | Path]) -> list[Path]:
    """Notebook files from files and folders, sorted, checkpoints and executed copies skipped."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.suffix == ".ipynb" and p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: not a notebook or folder")
    return found


def _error_line(exc: BaseException, nb_path: Path) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip().splitlines()
    cell = getattr(exc, "exec_count", None) or getattr(exc, "cell_index", None)
    where = f"cell {cell}" if cell is not None else "setup"
    return f"{where}: {ename}: {evalue[-1] if evalue else ''}"


def run(paths: Sequence[str | Path], *, smoke: bool = False, out_dir: str | Path | None = "reports/notebooks",
        in_place: bool = False, timeout_s: int = 600, parameters: dict | None = None,
        progress: bool = True, kernel: str = "python3") -> list[NotebookResult]:
    """Execute notebooks one by one; never raises for a failing notebook (it is a result)."""
    import nbformat
    import papermill as pm

    notebooks = find_notebooks(paths)
    out = Path(out_dir) if out_dir else None
    if out and not in_place:
        out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, nb_path in enumerate(notebooks, 1):
        target = nb_path if in_place or out is None else out / nb_path.name
        params = dict(parameters or {})
        if smoke:
            params["smoke"] = True
        if progress:
            print(f"[{i}/{len(notebooks)}] {nb_path} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        error = ""
        try:
            pm.execute_notebook(str(nb_path), str(target), parameters=params, kernel_name=kernel,
                                cwd=str(nb_path.parent), execution_timeout=timeout_s, progress_bar=False,
                                log_output=False)
        except Exception as exc:  # papermill's execution error carries the cell and error
            error = _error_line(exc, nb_path)
        seconds = time.perf_counter() - start
        records = {}
        if target.exists():
            nb = nbformat.read(str(target), as_version=4)
            records = collect_records(nb)
            nb.metadata.setdefault("botkit", {})["records"] = records
            nbformat.write(nb, str(target))
        res = NotebookResult(nb_path, target, not error, seconds, records, error)
        results.append(res)
        if progress:
            verdict = "ok" if res.ok else f"FAILED at {error}"
            print(f"      {verdict} in {seconds:.1f} s", file=sys.stderr, flush=True)
    return results


def write_junit(results: Sequence[NotebookResult], path: str | Path) -> Path:
    """One test case per notebook; failures carry the cell and error line."""
    suite = ET.Element("testsuite", name="notebooks", tests=str(len(results)),
                       failures=str(sum(not r.ok for r in results)),
                       time=f"{sum(r.seconds for r in results):.2f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="notebooks", name=r.path.stem, time=f"{r.seconds:.2f}")
        if not r.ok:
            ET.SubElement(case, "failure", message=r.error).text = f"{r.path}: {r.error}"
        if r.records:
            props = ET.SubElement(case, "properties")
            for k, v in r.records.items():
                ET.SubElement(props, "property", name=k, value=json.dumps(v))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_summary(results: Sequence[NotebookResult], path: str | Path) -> Path:
    lines = ["# Notebook run", "", "| notebook | status | seconds | recorded |", "|---|---|---|---|"]
    for r in results:
        rec = ", ".join(f"{k}={v}" for k, v in r.records.items()) or "-"
        status = "ok" if r.ok else f"FAILED ({r.error})"
        lines.append(f"| {r.path.name} | {status} | {r.seconds:.1f} | {rec} |")
    ok = sum(r.ok for r in results)
    lines += ["", f"{ok} passed, {len(results) - ok} failed"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------- serving helpers
# Used by notebooks 04-06. They import botkit.serving.serve (and so botkit.core.config) only when called,
# so importing this module first, for private_home(), stays safe.

__all__ += ["portable", "serving"]


@contextlib.contextmanager
def serving(**server_kwargs):
    """``with serving(workers=1) as srv:`` a ``botkit.serving.serve.Server`` with every worker ready; always stopped.

    The keyword arguments go to ``Server``. The server is stopped when the block ends, also
    when a cell fails half-way, so no notebook leaves a service running behind it.
    """
    import logging

    from botkit.serving.serve import Server

    # The readiness probes go through httpx, which logs every request at INFO once anything has
    # configured logging: a notebook shows answers, not the client's log lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with Server(**server_kwargs) as srv:  # start() waits for every worker
        yield srv


# ---------------------------------------------------------------------------- one thread through the day
# Notebooks 02-05 share one workshop home: the model gated in 02 is packaged in 03, served in 04 and
# monitored in 05. Each still runs alone: thread_bot() trains the same seeded model when none was handed
# over, so the printed output does not depend on the order; where the bot came from is recorded only.

__all__ += ["THREAD_HOME", "hand_over", "shown", "thread_bot", "thread_home"]

THREAD_HOME = "thread"
_THREAD_FILE = "thread.json"


def thread_home(*, start: bool = False) -> Path:
    """The workshop home notebooks 02-05 share (``<nb_home>/thread``); notebook 02 ``start``\\ s it empty."""
    return private_home(THREAD_HOME, fresh=start)


def hand_over(tag: str, *, by: str) -> None:
    """Make ``tag`` the bot of the day for the notebooks after this one (production stage, marked in the home)."""
    from botkit.core import config
    from botkit.core.registry import set_stage

    set_stage(tag, "production")
    (config.settings.home / _THREAD_FILE).write_text(json.dumps({"tag": tag, "by": by}), encoding="utf-8")


def thread_bot(*, seed: int = 42, by: str):
    """The bot of the day: the model handed over earlier in the thread, or, alone, one trained the same way now.

    Returns a ``botkit.ops.pipeline.TrainResult`` in production either way. A handed-over model is
    loaded from the store (hash-checked) and evaluated again on the same test split, which gives the
    metrics training gave, so a notebook prints the same whether it runs alone or after the others.
    """
    from botkit.core import config, data, registry
    from botkit.core.evaluate import evaluate
    from botkit.core.model import TrainParams
    from botkit.ops.pipeline import TrainResult, train_evaluate_register

    settings = config.settings
    handed: dict = {}
    with contextlib.suppress(OSError, ValueError):
        handed = json.loads((settings.home / _THREAD_FILE).read_text(encoding="utf-8"))
    if handed.get("tag"):
        try:
            loaded = registry.load_model(handed["tag"])
        except registry.RegistryError:
            loaded = None
        if loaded is not None:
            ds = data.load(seed=settings.seed)
            result = TrainResult(loaded.tag, loaded.model, ds, evaluate(loaded.model, ds.test),
                                 settings.reports_dir / "eval" / loaded.tag.replace(":", "-"))
            record("thread_bot_from", handed.get("by", "?"))
            return result
    result = train_evaluate_register(params=TrainParams(seed=seed))
    hand_over(result.tag, by=by)
    record("thread_bot_from", by)
    return result


def portable(text: str, home: str | os.PathLike[str] | None = None) -> str:
    """Command output as a notebook should keep it: the home folder as ``<home>``, loopback ports as
    ``<port>`` (they differ at every run and on every machine) and no pip index noise."""
    import re

    if home is not None:
        text = text.replace(str(home), "<home>")
    text = re.sub(r"(127\.0\.0\.1|localhost):\d+", r"\1:<port>", text)
    return "\n".join(line for line in text.splitlines() if "Location 'file:" not in line)


def shown(path: str | os.PathLike[str]) -> str:
    """A path as a notebook should print it: relative to the workshop home or the project, never absolute.

    Committed outputs then read the same on every machine (no user names, temp folders or ports).
    """
    from botkit.core import config

    p = Path(path).resolve()
    for base, prefix in ((config.settings.home, "<home>/"), (config.PACKAGE_DIR.parent, "")):
        with contextlib.suppress(ValueError):
            return prefix + str(p.relative_to(Path(base).resolve()))
    return p.name
