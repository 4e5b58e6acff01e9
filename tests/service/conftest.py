"""Service tests: the real BentoML service behind real HTTP, one trained bot and one server per session.

``tests/conftest.py`` has already pointed ``BOTKIT_HOME`` and ``BENTOML_HOME`` at a throw-away
directory when this file is imported, so the bot trained here, the server's logs and its event
store all live there. Starting a server costs seconds, so every test shares the session
``server`` (two workers, like production) unless it needs other settings: then it asks
``launch`` for one of its own, which is stopped when the test ends.

Tests here must leave the session server as they found it: serving, same settings.

``botkit.serving.serve.Server`` does the two things these tests rely on: ``start()`` returns only once
*every* worker has loaded the model (``wait_all_workers``), and each server gets a
``BENTOML_HOME`` of its own whose ``models`` links to the shared store (BentoML wipes its
Prometheus multiprocess files whenever a server starts on a home, so two servers on one home
would hide each other's metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from botkit.serving.serve import Server

SESSION_WORKERS = 2


@pytest.fixture(scope="session")
def bot_tag() -> str:
    """The default bot (bundled data), trained once, registered and promoted to production."""
    from botkit.core.registry import set_stage
    from botkit.ops.pipeline import train_evaluate_register

    result = train_evaluate_register()
    set_stage(result.tag, "production")
    return result.tag


@pytest.fixture(scope="session")
def server(bot_tag: str) -> Iterator[Server]:
    """One real ``bentoml serve`` with two workers for the whole session, ready when yielded."""
    srv = Server(model=bot_tag, workers=SESSION_WORKERS, batching=True, access_log=False)
    srv.start()
    try:
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
        srv = Server(model=kwargs.pop("model", bot_tag), workers=workers, env=env or {}, **kwargs)
        started.append(srv)
        srv.start(wait=wait)
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
