"""Settings and defaults for botkit, in one place.

Every tunable the library, the service, the CLI and the notebooks use lives here, read
once from the environment (``BOTKIT_*`` variables) so that a notebook, ``make run`` and a
container all agree. Importing this module also pins BentoML's home and switches off its
usage tracking *before* BentoML is imported anywhere else in the process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["BUNDLED_DATA", "PACKAGE_DIR", "Settings", "settings"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the botkit package
BUNDLED_DATA = PACKAGE_DIR / "data" / "shopbot"


def _home() -> Path:
    return Path(os.environ.get("BOTKIT_HOME", ".botkit")).expanduser().resolve()


# BentoML reads these when it is imported: set them first, never override the user's.
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("BENTOML_HOME", str(_home() / "bentoml"))


@dataclass(frozen=True)
class Settings:
    """What a deployment may change; everything else is a constant in its module."""

    home: Path = field(default_factory=_home)
    model_name: str = "shopbot"
    model_tag: str = ""  # empty: the newest production model, else the newest
    seed: int = 42
    # Serving.
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 2
    batching: bool = True
    max_batch_size: int = 64
    max_latency_ms: int = 2000
    access_log: bool = False
    # OpenTelemetry spans cost about a quarter of the server's CPU per request (profiled); off
    # unless you export traces somewhere.
    tracing: bool = False
    max_message_chars: int = 2000
    max_body_bytes: int = 1_000_000
    ready_wait_s: float = 20.0  # a request reaching a worker that is still loading waits this long, then 503
    startup_delay_s: float = 0.0  # hold readiness back (readiness drills in workshops and tests)
    # A second model tag that also answers every message, off the response path; its answer goes
    # into the chat event only (``botkit shadow report``). Empty: no shadow.
    shadow_model: str = ""
    # Events.
    events_backend: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Where reports go.
    reports_dir: Path = Path("reports")

    @property
    def bentoml_home(self) -> Path:
        return Path(os.environ["BENTOML_HOME"])

    @property
    def events_path(self) -> Path:
        return self.home / "events.sqlite3"

    @property
    def audit_path(self) -> Path:
        return self.home / "audit.jsonl"

    def new_report_dir(self, kind: str, label: str = "", out_dir: str | Path | None = None) -> Path:
        """A fresh ``reports/<kind>/<UTC stamp>[-label]`` folder (or ``out_dir`` when given), created."""
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            return Path(out_dir)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + (f"-{label}" if label else "")
        for i in range(1000):
            path = self.reports_dir / kind / (stamp if i == 0 else f"{stamp}-{i + 1}")
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"{self.reports_dir / kind}: cannot create a new report folder")

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from ``BOTKIT_<FIELD>`` environment variables over the defaults."""
        base = cls()
        changes: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"BOTKIT_{f.name.upper()}")
            if raw is None or f.name == "home":
                continue
            current = getattr(base, f.name)
            if isinstance(current, bool):
                changes[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(current, float):
                changes[f.name] = float(raw)
            elif isinstance(current, int):
                changes[f.name] = int(raw)
            elif isinstance(current, Path):
                changes[f.name] = Path(raw)
            else:
                changes[f.name] = raw
        return replace(base, **changes)

    def env(self) -> dict[str, str]:
        """The environment a child process (server, Locust, notebook) needs to see the same settings."""
        out = {"BOTKIT_HOME": str(self.home), "BENTOML_HOME": str(self.bentoml_home),
               "BENTOML_DO_NOT_TRACK": "true"}
        for f in fields(self):
            if f.name != "home":
                value = getattr(self, f.name)
                out[f"BOTKIT_{f.name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


settings = Settings.from_env()
