"""Metrics labelled by route, not by raw path: unknown paths cannot grow ``/metrics``.

BentoML's HTTP metrics middleware (``RunnerTrafficMetricsMiddleware``, the outermost layer of
the app, so no botkit middleware runs before it) labels ``request_total``,
``request_duration_seconds`` and ``request_in_progress`` with ``endpoint=<the raw path>``. Every
new path makes new series: 2,000 random paths added 40,000 lines to ``/metrics`` (memory in the
server, disk and cardinality in Prometheus).

:func:`install` swaps that class, in the worker, for a subclass that hands it a scope whose path
is the route when the route is known, else ``OTHER``. The request itself routes on that path too,
so an unknown path still answers 404 (``OTHER`` matches no route), and known routes are unchanged.
BentoML imports the class when it builds the app, after the service module is imported, so the
swap is in place in time.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BENTOML_ROUTES", "OTHER", "install", "label_for"]

OTHER = "other"
BENTOML_ROUTES = frozenset({"/", "/docs.json", "/schema.json", "/livez", "/healthz", "/readyz", "/metrics"})
_known: set[str] = set(BENTOML_ROUTES)


def _static_files() -> set[str]:
    """The files BentoML serves under ``/static_content`` (Swagger UI): known paths too."""
    from pathlib import Path

    from bentoml._internal import server

    folder = Path(server.__file__).parent / "static_content"
    if not folder.is_dir():
        return set()
    return {f"/static_content/{f.relative_to(folder).as_posix()}" for f in folder.rglob("*") if f.is_file()}


def label_for(path: str) -> str:
    """The label a path is counted under: itself when it is a route, else ``OTHER``."""
    return path if path in _known else OTHER


def install(routes: Iterable[str]) -> None:
    """Know ``routes`` (the service's API routes) and swap BentoML's metrics middleware (idempotent)."""
    from bentoml._internal.server.http import instruments

    _known.update(routes)
    _known.update(_static_files())
    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "_botkit_route_labels", False):
        return

    class RouteLabelledMetrics(base):
        _botkit_route_labels = True

        async def __call__(self, scope, receive, send):
            if scope.get("type") == "http" and label_for(scope.get("path", "")) == OTHER:
                scope = {**scope, "path": OTHER, "raw_path": OTHER.encode()}
            return await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics
