"""The pinned versions have one source: conda users and `make` users get the same set."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = PIN.match(line.split("#", 1)[0].strip())
        if m:
            out[_norm(m.group(1))] = m.group(2)
    return out


def _lock(name: str) -> dict[str, str]:
    return _pins((ROOT / "requirements" / name).read_text().splitlines())


def test_environment_yml_pins_match_the_lock_file():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_section)
    lock = _lock("dev.lock")
    top = _pins((ROOT / "requirements" / "requirements.in").read_text().splitlines())
    assert env_pins == top, "environment.yml pip section drifted from requirements/requirements.in"
    drifted = {n: (v, lock.get(n)) for n, v in env_pins.items() if lock.get(n) != v}
    assert not drifted, f"versions differ between environment.yml and dev.lock (run `make lock`): {drifted}"


def test_every_lock_entry_is_an_exact_pin_with_hashes():
    for name in ("dev.lock", "runtime.lock"):
        text = (ROOT / "requirements" / name).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])  # one entry: a pin and its hashes
        assert len(entries) > 10, name
        for entry in entries:
            first = entry.splitlines()[0]
            assert PIN.match(first) and first.endswith("\\"), f"{name}: {first}"
            assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{name}: no hash for {first}"


def test_runtime_lock_is_the_dev_lock_cut_to_what_the_service_needs():
    dev, runtime = _lock("dev.lock"), _lock("runtime.lock")
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}, "runtime.lock disagrees with dev.lock"
    for name in ("bentoml", "scikit-learn", "skops", "pydantic-settings", "prometheus-client"):
        assert name in runtime
    for name in ("jupyterlab", "locust", "pytest", "papermill", "playwright", "ruff"):
        assert name not in runtime, f"{name} would ship in the bento"


def test_required_toolkit_packages_are_pinned():
    top = _pins((ROOT / "requirements" / "requirements.in").read_text().splitlines())
    for name in ("jupyterlab", "papermill", "bentoml", "locust", "nbval", "matplotlib", "scikit-learn"):
        assert name in top, f"{name} must be pinned in requirements/requirements.in"
    assert top["bentoml"].startswith("1.4.")
