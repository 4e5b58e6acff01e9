"""Settings and defaults for botkit, in one place.

Every tunable the library, the service, the CLI and the notebooks use lives here, read
once from the environment (``BOTKIT_*`` variables, pydantic-settings) so that a notebook,
``make run`` and a container all agree; a bad value (``BOTKIT_PORT=abc``) fails at start with
the variable's name. Importing this module changes nothing: BentoML's home and its usage
tracking are set by :func:`configure_bentoml`, which every module calls before it imports
BentoML, and child processes get them from :meth:`Settings.env`.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BUNDLED_DATA", "PACKAGE_DIR", "Settings", "configure_bentoml", "settings"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the botkit package
BUNDLED_DATA = PACKAGE_DIR / "data" / "shopbot"


class Settings(BaseSettings):
    """What a deployment may change; everything else is a constant in its module.

    Each field ``name`` is read from ``BOTKIT_NAME`` (a few also from an older or a
    tool's own name: ``LOADTEST_SLO``); frozen, so one process sees one set. ``bentoml_home``
    follows ``BENTOML_HOME`` live, as BentoML itself does.
    """

    model_config = SettingsConfigDict(env_prefix="BOTKIT_", frozen=True, extra="ignore", populate_by_name=True,
                                      validate_default=True, protected_namespaces=())

    home: Path = Path(".botkit")  # resolved to an absolute path
    model_name: str = "shopbot"
    model_tag: str = ""  # empty: the newest production model, else the newest
    seed: int = 42
    # Serving.
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 2
    batching: bool = True
    max_batch_size: int = 64
    # Full garbage collections were the p99 (botkit/serving/gctune.py): freeze what is alive after the
    # model loads, and collect generation 0 less often (0 keeps Python's default of 700).
    gc_freeze: bool = True
    gc_gen0_threshold: int = 10_000
    # Cancel BentoML's per-request timeout timer once the response starts (botkit/serving/timeouts.py).
    cancel_request_timers: bool = True
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
    # Share of messages the shadow also answers (measured, 32 users on 2 cores, durable acks: a shadow
    # on every message cost 49 % of throughput, on a quarter of them 19 %; deploy/RELEASES.md).
    shadow_sample: float = 1.0
    # Events.
    events_backend: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A 200 means "stored": handlers wait for the writer's group commit (False: "queued", as before).
    events_durable: bool = True
    events_ack_timeout_s: float = 0.5  # longest a request waits for its commit, then 503 + Retry-After
    events_commit_interval_s: float = 0.002  # group commit: linger this long to gather a batch
    events_max_queue: int = 100_000  # events waiting for the store; beyond it new events are refused
    events_flush_bound_s: float = 10.0  # shutdown waits at most this long to write what is queued
    redis_connect_timeout_s: float = 0.5
    redis_socket_timeout_s: float = 0.5  # a hung Redis fails a call after this, never blocks a thread forever
    redis_retries: int = 2  # client-level retries of one call on connection errors (with backoff)
    redis_stream_maxlen: int = 1_000_000  # oldest events trimmed beyond this (bounded memory)
    redis_maxmemory_mb: int = 256  # `botkit cluster`'s Redis: writes fail (never evict) beyond it
    # `botkit cluster`: replicas behind HAProxy, and workers per replica (2 cores: 1 each).
    cluster_replicas: int = 3
    cluster_workers: int = 1
    # Where reports go.
    reports_dir: Path = Path("reports")

    # Configuration read by single modules (each was an os.environ read of its own before).
    debug: bool = False  # the CLI shows tracebacks of internal errors
    fault_injection: bool = False  # the service honours the X-Botkit-Delay-Ms header (fault drills only)
    user: str = ""  # who runs governance commands (audit log), when --who is not given; else the OS user
    owner: str = ""  # the owner recorded in model metadata; else the OS user
    container_cache: Path | None = None  # the container proof's cache (default: <home>/container)
    container_storage: str = ""  # force buildah's storage driver: "overlay" or "vfs" (default: try both)
    nb_home: Path | None = None  # parent of the notebooks' private homes (default: <tmp>/botkit-nb)
    loadtest_slo: Path | None = Field(default=None, validation_alias=AliasChoices("BOTKIT_LOADTEST_SLO",
                                                                                 "LOADTEST_SLO", "loadtest_slo"))
    # Trust (issue 14). Keys live apart from what they protect: files (a mounted Secret in Kubernetes),
    # created with mode 0600 on first use when absent.
    id_key_file: Path | None = None  # HMAC key for session ids (default: <home>/secrets/id.key)
    audit_key_file: Path | None = None  # HMAC key of the audit chain and model signatures (<home>/secrets/audit.key)
    signatures_dir: Path | None = None  # model signatures, apart from the model store (default: <home>/signatures)
    model_signatures: str = "verify"  # verify (refuse bad, warn unsigned), require (refuse unsigned too), off
    allowed_hosts: str = "localhost,127.0.0.1,::1"  # Host allow-list: names, ".example.com" (a domain), "*" (any)
    cors_origins: str = ""  # empty: no CORS at all; else comma-separated origins allowed to call the API
    api_keys: str = ""  # sha256 hex digests of bearer tokens, comma-separated; empty: no auth (workshop default)
    protect_metrics: bool = False  # with api_keys set, /metrics needs a token too
    max_batch_chars: int = 100_000  # total characters of all messages in one /chat_batch
    feedback_per_session_per_min: int = 10  # feedback rate limits (429 + Retry-After beyond them)
    feedback_per_client_per_min: int = 60
    feedback_limit_loopback: bool = False  # rate-limit loopback peers too (off: probes, load tests, local proxies)
    correction_min_sessions: int = 3  # retrain learns a correction once this many sessions agree (or a reviewer)

    @field_validator("home", "container_cache", "nb_home", "id_key_file", "audit_key_file", "signatures_dir")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        return None if v is None else Path(v).expanduser().resolve()

    @field_validator("container_storage")
    @classmethod
    def _driver(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("", "overlay", "vfs"):
            raise ValueError(f"must be 'overlay' or 'vfs', got {v!r}")
        return v

    @property
    def bentoml_home(self) -> Path:
        """BentoML's model store: ``BENTOML_HOME`` when set (BentoML reads that one), else ``<home>/bentoml``."""
        raw = os.environ.get("BENTOML_HOME")
        return Path(raw).expanduser().resolve() if raw else self.home / "bentoml"

    @property
    def os_user(self) -> str:
        """``user`` when set, else the login name (``uid:N`` for a container user without a passwd entry)."""
        if self.user.strip():
            return self.user.strip()
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return f"uid:{os.getuid()}"

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
        """Build settings from ``BOTKIT_<FIELD>`` environment variables over the defaults (read now)."""
        return cls()

    def env(self) -> dict[str, str]:
        """The environment a child process (server, Locust, notebook) needs to see the same settings."""
        out = {"BOTKIT_HOME": str(self.home), "BENTOML_HOME": str(self.bentoml_home),
               "BENTOML_DO_NOT_TRACK": "true"}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "home" or value is None:
                continue
            if isinstance(value, bool):
                text = str(value).lower()
            elif isinstance(value, list | tuple | dict | set):
                text = json.dumps(list(value) if isinstance(value, tuple | set) else value)  # how pydantic reads them
            else:
                text = str(value)
            out[f"BOTKIT_{name.upper()}"] = text
        return out


def configure_bentoml(s: Settings | None = None) -> None:
    """Point BentoML at botkit's model store and switch its usage tracking off; call before ``import bentoml``.

    BentoML reads both from the environment when it is first imported, so this sets them in
    this process, never overriding a BENTOML_HOME the user (or a test) chose. Calling it again
    is harmless. Under ``bentoml serve`` BentoML is imported first, from the environment its
    parent passed (:meth:`Settings.env`), which says the same.
    """
    s = s or settings
    os.environ.setdefault("BENTOML_HOME", str(s.bentoml_home))
    os.environ["BENTOML_DO_NOT_TRACK"] = "true"


settings = Settings.from_env()
