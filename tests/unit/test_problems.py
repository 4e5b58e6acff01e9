"""The error model and the ASGI guards that enforce it, on a small Starlette app (no BentoML server)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from botkit.serving.middleware import JsonOnly, ProblemResponses, problem_body
from botkit.serving.problems import PROBLEM_MEDIA_TYPE, Problem, problem


async def _echo(request: Request):
    return JSONResponse({"got": (await request.body()).decode()})


async def _bentoml_400(request: Request):  # what BentoML 1.4 answers for a pydantic ValidationError
    return JSONResponse({"error": "1 validation error for ChatRequest",
                         "detail": [{"type": "missing", "loc": ["message"], "msg": "Field required"}]}, 400)


async def _crash(request: Request):
    return JSONResponse({"error": "An unexpected error has occurred, please check the server log."}, 500)


@pytest.fixture
def client() -> TestClient:
    app = Starlette(routes=[Route("/chat", _echo, methods=["POST"]), Route("/bad", _bentoml_400, methods=["POST"]),
                            Route("/crash", _crash), Route("/other", _echo, methods=["POST"])])
    app.add_middleware(JsonOnly, paths=("/chat", "/bad"))
    app.add_middleware(ProblemResponses)  # added last: outermost, like in the service
    return TestClient(app)


def test_problem_is_rfc9457_with_extensions_and_headers():
    r = problem(429, detail="slow down", headers={"Retry-After": "3"}, retry_after_s=3)
    assert r.media_type == PROBLEM_MEDIA_TYPE and r.status_code == 429 and r.headers["retry-after"] == "3"
    body = Problem.model_validate_json(r.body)
    assert (body.type, body.title, body.status, body.detail) == ("about:blank", "Too Many Requests", 429, "slow down")
    assert body.model_extra == {"retry_after_s": 3}


@pytest.mark.parametrize(("headers", "content"), [
    ({"content-type": "application/x-www-form-urlencoded"}, b"message=hi"),
    ({"content-type": "multipart/form-data"}, b"x"),
    ({"content-type": "text/plain"}, b"{}"),
    ({}, b"{}"),
    ({"content-type": "application/json", "content-encoding": "gzip"}, b"\x1f\x8b"),
])
def test_json_only_refuses_other_bodies_with_415(client, headers, content):
    r = client.post("/chat", content=content, headers=headers)
    assert r.status_code == 415 and r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "application/json" in r.json()["detail"]


def test_json_only_lets_json_through_and_leaves_other_paths_alone(client):
    assert client.post("/chat", content=b"{}", headers={"content-type": "Application/JSON; charset=utf-8"}).json() == {
        "got": "{}"}
    assert client.post("/other", content=b"x", headers={"content-type": "text/plain"}).status_code == 200


def test_bentoml_validation_errors_become_problems_with_errors(client):
    r = client.post("/bad", json={})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert r.json() == {"type": "about:blank", "title": "Bad Request", "status": 400,
                        "detail": "message: Field required",
                        "errors": [{"loc": ["message"], "msg": "Field required", "type": "missing"}]}
    assert int(r.headers["content-length"]) == len(r.content)


def test_framework_errors_become_problems_and_keep_their_headers(client):
    r = client.get("/chat")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["title"] == "Method Not Allowed"
    assert client.get("/nowhere").json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                                             "detail": "Not Found"}
    crash = client.get("/crash")
    assert crash.status_code == 500 and crash.json()["detail"].startswith("An unexpected error")


def test_problem_body_reads_what_others_wrote():
    assert problem_body(400, b"not json")["detail"] == "not json"  # not JSON: the text is kept
    assert problem_body(404, b'[{"error": "no such task"}]')["detail"] == "no such task"  # BentoML's 1-tuple
    assert problem_body(502, PlainTextResponse("upstream down").body)["detail"] == "upstream down"
    assert problem_body(503, b"")["title"] == "Service Unavailable"
