"""Service tests: the real BentoML service behind real HTTP, one trained bot and one server per session.

``tests/conftest.py`` has already pointed ``BOTKIT_HOME`` and ``BENTOML_HOME`` at a throw-away
directory when this file is imported, so the bot trained here, the server's logs and its event
store all live there. Starting a server costs seconds, so every test shares the session
``server`` (two workers, like production) unless it needs other settings: then it asks
``launch`` for one of its own, which is stopped when the test ends.

Tests here must leave the session server as they found it: serving, same settings.

A server counts as started when *every* worker is ready: ``Server.start`` returns at the first
``/readyz`` 200, which only proves one worker ready (each worker loads the model on its own, and
requests that reach a worker still loading get 503): see ``wait_all_workers_ready``.

Each server gets a ``BENTOML_HOME`` of its own (its ``models`` a link to the shared store):
BentoML keeps the Prometheus multiprocess files in ``$BENTOML_HOME/prometheus_multiproc_dir``
and deletes that directory whenever a server starts, so two servers on one home would hide
each other's metrics (the first one's ``/metrics`` silently stops counting).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from botkit.serve import Server, ServerError

SESSION_WORKERS = 2


def private_bentoml_home() -> Path:
    """A fresh ``BENTOML_HOME`` for one server that sees the session's model store."""
    from botkit.config import settings

    home = settings.home / "servers" / uuid4().hex[:8] / "bentoml"
    home.mkdir(parents=True)
    (home / "models").symlink_to(settings.bentoml_home / "models", target_is_directory=True)
    return home


def make_server(tag: str, *, workers: int, env: dict[str, str] | None = None, **kwargs) -> Server:
    """A ``Server`` (not started) on ``tag`` with a private ``BENTOML_HOME``."""
    env = {"BENTOML_HOME": str(private_bentoml_home()), **(env or {})}
    return Server(model=tag, workers=workers, env=env, **kwargs)


def wait_all_workers_ready(srv: Server, timeout_s: float = 90.0, burst: int = 16) -> None:
    """Wait until every worker of ``srv`` answers chats.

    The proof: a burst of parallel ``/chat`` on fresh connections all answered 200, and every
    worker's pid appears, stamped inside the burst, in BentoML's per-process
    ``bentoml_service_last_request_timestamp_seconds`` gauge, so every worker answered part of it.
    (``/readyz`` cannot serve here: BentoML leaves it out of that gauge.)
    """
    from prometheus_client.parser import text_string_to_metric_families

    workers = srv.workers or 1
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=burst)
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=srv.url, timeout=10, limits=limits) as c, ThreadPoolExecutor(8) as pool:
        while True:
            started = time.time()
            codes = list(pool.map(lambda _: c.post("/chat", json={"message": "hello"}).status_code, range(burst)))
            ended = time.time()
            if codes == [200] * burst:
                pids = {sample.labels.get("pid")
                        for family in text_string_to_metric_families(c.get("/metrics").text)
                        if family.name == "bentoml_service_last_request_timestamp_seconds"
                        for sample in family.samples if started <= sample.value <= ended}
                if len(pids) >= workers:
                    return
            if time.monotonic() > deadline:
                raise ServerError(f"not all {workers} workers of {srv.url} ready after {timeout_s:.0f} s "
                                  f"(last burst: {codes}); log:\n{srv.log_tail()}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def bot_tag() -> str:
    """The default bot (bundled data), trained once, registered and promoted to production."""
    from botkit.pipeline import train_evaluate_register
    from botkit.registry import set_stage

    result = train_evaluate_register()
    set_stage(result.tag, "production")
    return result.tag


@pytest.fixture(scope="session")
def server(bot_tag: str) -> Iterator[Server]:
    """One real ``bentoml serve`` with two workers for the whole session, ready when yielded."""
    srv = make_server(bot_tag, workers=SESSION_WORKERS, batching=True, access_log=False)
    srv.start()
    try:
        wait_all_workers_ready(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[httpx.Client]:
    """A keep-alive HTTP client on the session server (one connection: one worker at a time)."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def fresh_client(server: Server) -> Iterator[httpx.Client]:
    """A new connection for every request, so either worker may take it (safe to share between threads)."""
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=32)
    with httpx.Client(base_url=server.url, timeout=30, limits=limits) as c:
        yield c


@pytest.fixture
def launch(bot_tag: str) -> Iterator[Callable[..., Server]]:
    """Start an extra server with other settings: ``launch(workers=1, env={...}, wait=False)``.

    Every server started through it is stopped when the test ends, pass or fail.
    """
    started: list[Server] = []

    def _launch(*, wait: bool = True, workers: int = 1, env: dict[str, str] | None = None, **kwargs) -> Server:
        srv = make_server(kwargs.pop("model", bot_tag), workers=workers, env=env, **kwargs)
        started.append(srv)
        srv.start(wait=wait)
        if wait:
            wait_all_workers_ready(srv)
        return srv

    yield _launch
    for srv in started:
        srv.stop()


@dataclass(frozen=True)
class Scrape:
    """One parsed ``/metrics`` page: samples by name and labels, and the HELP text of each family."""

    samples: dict[tuple[str, frozenset], float]
    helps: dict[str, str]
    text: str

    def value(self, name: str, **labels: str) -> float:
        """One sample (0 when absent: a labelled counter has no sample until first incremented)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over every sample of ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, lab), v in self.samples.items() if n == name and want <= lab)

    def labelsets(self, name: str) -> list[dict[str, str]]:
        return [dict(lab) for (n, lab) in self.samples if n == name]


@pytest.fixture(scope="session")
def scrape(client: httpx.Client) -> Callable[[], Scrape]:
    """``scrape()`` reads the session server's ``/metrics`` (all workers, summed by BentoML)."""
    from prometheus_client.parser import text_string_to_metric_families

    def _scrape() -> Scrape:
        r = client.get("/metrics")
        assert r.status_code == 200, r.text[:500]
        samples: dict[tuple[str, frozenset], float] = {}
        helps: dict[str, str] = {}
        for family in text_string_to_metric_families(r.text):
            helps[family.name] = family.documentation
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        return Scrape(samples, helps, r.text)

    return _scrape


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On failure, attach the tail of the session server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    srv = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(srv, Server):
        report.sections.append(("server log (tail)", srv.log_tail(40)))
