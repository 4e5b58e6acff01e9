"""pyproject.toml declares what botkit imports: core + serving as runtime dependencies, the rest in groups.

The groups (serve, notebooks, loadtest, dev) and the pins of requirements/requirements.in agree:
every pin names its group, and that group declares the package.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ("runtime", "serve", "notebooks", "loadtest", "dev")
# Imported by core or serving inside a function the service never calls, so not shipped in the bento.
OPTIONAL_IN_CORE = {
    "matplotlib": "core.evaluate.write_report draws figures for `botkit evaluate` and notebooks (serve group)",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    return _norm(re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0])


@cache
def _declared() -> dict[str, set[str]]:
    """group -> normalised package names; dev includes what its self-reference pulls in."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"runtime": {_req_name(r) for r in project["dependencies"]}}
    extras = project.get("optional-dependencies", {})
    for name, reqs in extras.items():
        groups[name] = {_req_name(r) for r in reqs if not r.startswith("botkit")}
    for name, reqs in extras.items():
        for r in reqs:
            if m := re.match(r"botkit\[([^\]]+)\]", r):
                for other in m.group(1).split(","):
                    groups[name] |= groups[other.strip()]
    return groups


def _pins() -> list[tuple[str, str, str]]:
    """(name, version, group) of every line of requirements.in."""
    out = []
    for line in (ROOT / "requirements" / "requirements.in").read_text().splitlines():
        pin, _, comment = line.partition("#")
        if "==" not in pin:
            continue
        name, version = pin.strip().split("==", 1)
        group = re.match(r"\s*([a-z]+)", comment)
        out.append((_norm(name), version.strip(), group.group(1) if group else ""))
    return out


def _imports(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _notebook_imports(path: Path) -> set[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return _imports("\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!"))))


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def _third_party(modules: set[str]) -> dict[str, str]:
    """module -> its distribution (normalised), for modules an installed distribution provides."""
    dists = _distributions()
    return {m: _norm(dists[m][0]) for m in modules
            if m in dists and m not in sys.stdlib_module_names and m != "botkit"}


def _scan(*patterns: str) -> dict[str, set[str]]:
    """distribution -> files importing it."""
    out: dict[str, set[str]] = {}
    for pattern in patterns:
        for path in ROOT.glob(pattern):
            if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            mods = _notebook_imports(path) if path.suffix == ".ipynb" else _imports(path.read_text(encoding="utf-8"))
            for dist in _third_party(mods).values():
                out.setdefault(dist, set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_pin_names_its_group_and_that_group_declares_it():
    declared = _declared()
    problems = []
    for name, version, group in _pins():
        if group not in GROUPS:
            problems.append(f"{name}=={version}: tag it with one of {', '.join(GROUPS)} (a comment after the pin)")
        elif name not in declared[group]:
            where = "dependencies" if group == "runtime" else f"optional-dependencies.{group}"
            problems.append(f"{name}: pinned as {group}, but pyproject.toml [project] {where} does not declare it")
    assert not problems, "\n".join(problems)


def test_every_runtime_dependency_is_pinned_as_runtime():
    runtime_pins = {n for n, _, g in _pins() if g == "runtime"}
    missing = sorted(_declared()["runtime"] - runtime_pins)
    assert not missing, f"pin these in requirements/requirements.in with '# runtime': {missing}"


def test_core_and_serving_import_only_runtime_dependencies():
    used = _scan("botkit/__init__.py", "botkit/core/**/*.py", "botkit/serving/**/*.py")
    undeclared = {d: sorted(f)[:3] for d, f in used.items()
                  if d not in _declared()["runtime"] and d not in OPTIONAL_IN_CORE}
    assert not undeclared, f"the bento would lack these (add to [project] dependencies): {undeclared}"


@pytest.mark.parametrize("area", [("botkit/**/*.py",), ("tests/**/*.py",), ("loadtests/**/*.py",),
                                  ("notebooks/*.ipynb", "workshops/**/*.ipynb")], ids=lambda a: a[0].split("/")[0])
def test_everything_imported_anywhere_is_declared(area):
    everything = set().union(*_declared().values())
    undeclared = {d: sorted(f)[:3] for d, f in _scan(*area).items() if d not in everything}
    assert not undeclared, f"declare these in pyproject.toml (runtime or a group): {undeclared}"


def test_the_scan_sees_imports_and_maps_them_to_distributions():
    assert _third_party(_imports("import sklearn.svm\nfrom yaml import safe_load\nimport os")) == {
        "sklearn": "scikit-learn", "yaml": "pyyaml"}


def _lock_names(name: str) -> set[str]:
    text = (ROOT / "requirements" / name).read_text()
    return {_norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==", text, re.MULTILINE)}


def test_the_locks_hold_what_pyproject_declares():
    declared = _declared()
    missing_runtime = sorted(declared["runtime"] - _lock_names("runtime.lock"))
    missing_dev = sorted(set().union(*declared.values()) - _lock_names("dev.lock"))
    assert not missing_runtime and not missing_dev, (
        f"run `make lock`: runtime.lock lacks {missing_runtime}, dev.lock lacks {missing_dev}")
