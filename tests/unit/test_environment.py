"""The pinned versions have one source: conda users and `make` users get the same set."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return out


def test_environment_yml_pins_match_the_lock_file():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_section)
    lock = _pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())
    top = _pins((ROOT / "requirements" / "requirements.in").read_text().splitlines())
    assert env_pins == top, "environment.yml pip section drifted from requirements/requirements.in"
    drifted = {n: (v, lock.get(n)) for n, v in env_pins.items() if lock.get(n) != v}
    assert not drifted, f"versions differ between environment.yml and lock.txt: {drifted}"


def test_every_lock_line_is_an_exact_pin():
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^\s=]+", line.strip()), line


def test_required_toolkit_packages_are_pinned():
    top = _pins((ROOT / "requirements" / "requirements.in").read_text().splitlines())
    for name in ("jupyterlab", "papermill", "bentoml", "locust", "nbval", "matplotlib", "scikit-learn"):
        assert name in top, f"{name} must be pinned in requirements/requirements.in"
    assert top["bentoml"].startswith("1.4.")
