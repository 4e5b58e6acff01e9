"""botkit.core.config: one pydantic-settings Settings, the only place that reads configuration from the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from botkit.core.config import PACKAGE_DIR, Settings

# A configuration read: os.environ.get(...), os.getenv(...), os.environ[...] used as a value.
_ENV_READ = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[[^\]]+\](?!\s*=)")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTKIT_", "BENTOML_", "LOADTEST_"))}
    return {**env, **extra}


def test_only_config_reads_the_environment() -> None:
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path == PACKAGE_DIR / "core" / "config.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _ENV_READ.search(line.split("#", 1)[0]):
                offenders.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{n}: {line.strip()}")
    assert not offenders, "read configuration through botkit.core.config.settings:\n" + "\n".join(offenders)


def test_the_rule_catches_a_read() -> None:
    assert _ENV_READ.search('x = os.environ.get("BOTKIT_X")') and _ENV_READ.search('os.environ["HOME"] + "/x"')
    assert not _ENV_READ.search('env = {**os.environ, "A": "1"}') and not _ENV_READ.search('os.environ["A"] = "1"')


def test_importing_config_leaves_the_environment_alone(tmp_path: Path) -> None:
    code = ("import os; before = dict(os.environ)\n"
            "from botkit.core.config import settings\n"
            "assert dict(os.environ) == before, sorted(set(os.environ) ^ set(before))\n"
            "print(settings.home)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=_clean_env(BOTKIT_HOME=str(tmp_path / "h")))
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == (tmp_path / "h").resolve()


def test_model_store_lands_in_botkit_home_and_tracking_stays_off(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "from botkit.core import registry\n"
        "from bentoml._internal.configuration.containers import BentoMLContainer\n"
        "from bentoml._internal.utils.analytics.usage_stats import do_not_track\n"
        "registry.list_models()\n"
        "print(BentoMLContainer.bentoml_home.get()); print(do_not_track())\n"
    )
    home = tmp_path / "home"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=_clean_env(BOTKIT_HOME=str(home)))
    assert out.returncode == 0, out.stderr
    store, tracking_off = out.stdout.split()[-2:]
    assert Path(store) == (home / "bentoml").resolve()
    assert tracking_off == "True"


def test_a_bentoml_home_the_user_chose_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "mine"))
    s = Settings()
    assert s.bentoml_home == (tmp_path / "mine").resolve()
    assert s.env()["BENTOML_HOME"] == str((tmp_path / "mine").resolve())


def test_environment_variables_override_defaults_with_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTKIT_PORT", "4123")
    monkeypatch.setenv("BOTKIT_BATCHING", "false")
    monkeypatch.setenv("BOTKIT_READY_WAIT_S", "2.5")
    monkeypatch.setenv("LOADTEST_SLO", "slo/strict.yaml")
    s = Settings.from_env()
    assert (s.port, s.batching, s.ready_wait_s) == (4123, False, 2.5)
    assert s.loadtest_slo == Path("slo/strict.yaml")


def test_a_bad_value_fails_at_start_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTKIT_WORKERS", "two")
    with pytest.raises(ValidationError, match="workers"):
        Settings()
    monkeypatch.delenv("BOTKIT_WORKERS")
    monkeypatch.setenv("BOTKIT_CONTAINER_STORAGE", "zfs")
    with pytest.raises(ValidationError, match="overlay"):
        Settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().port = 1  # type: ignore[misc]


def test_env_round_trips_to_a_child_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in [k for k in os.environ if k.startswith(("BOTKIT_", "BENTOML_"))]:
        monkeypatch.delenv(k)
    s = Settings(home=tmp_path, port=4567, workers=3, debug=True)
    for k, v in s.env().items():
        monkeypatch.setenv(k, v)
    child = Settings.from_env()
    assert child.model_dump() == s.model_dump()
    assert child.bentoml_home == s.bentoml_home == tmp_path.resolve() / "bentoml"
