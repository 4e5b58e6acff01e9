"""The published API contract: the OpenAPI document served at ``/docs.json`` and kept in ``deploy/openapi.json``.

BentoML 1.4 generates ``/docs.json`` from the service (``Service.openapi_spec``), but what it
generates is not what the service answers: every POST lists 200/400/404/500 with BentoML's own
error schemas (whose 400 ``detail`` is documented as a string and sent as a list), optional fields
lose ``nullable``, and there are no examples or links. ``build_openapi`` keeps BentoML's document
where it is right (paths, infrastructure routes, operation descriptions) and replaces the rest
from the project's own sources of truth: the pydantic models of ``botkit.serving.schemas``, the
status table ``botkit.serving.problems.ROUTE_ERRORS`` and the problem-details model. ``ServeOpenAPI``
(added with ``Chat.add_asgi_middleware``, BentoML's supported hook) answers ``GET /docs.json`` with it,
so the Swagger UI at ``/`` shows the same document.

The document depends on code only (no model, no settings read at request time), so it can be
written without a server: ``botkit openapi --write`` (``make openapi``) refreshes the snapshot.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse

from botkit.serving.problems import PROBLEM_MEDIA_TYPE, ROUTE_ERRORS, FieldError, Problem, title_for
from botkit.serving.schemas import (
    ChatBatchRequest,
    ChatRequest,
    ChatResponse,
    FeedbackRequest,
    FeedbackResponse,
)

__all__ = ["API_VERSION", "SNAPSHOT", "ServeOpenAPI", "build_openapi", "render", "write_snapshot"]

# The contract's own version (info.version): bump the minor for additions, the major for breaking changes.
API_VERSION = "1.0.0"
SNAPSHOT = Path(__file__).resolve().parents[2] / "deploy" / "openapi.json"
REF = "#/components/schemas/{model}"
DESCRIPTION = (
    "The botkit chat API: intent, confidence and reply for each message, and feedback on the answers.\n\n"
    "Requests are JSON only (`Content-Type: application/json`; anything else is answered 415). Every error "
    "is RFC 9457 problem details (`application/problem+json`: `type`, `title`, `status`, `detail`; 400 adds "
    "`errors`, one entry per invalid field). The statuses each route can answer are listed on it."
)

_CHAT_EXAMPLE = {"request_id": "5f0c9a1e2b7d4c3e8a6b1d2f3e4a5b6c", "intent": "order_status", "confidence": 0.93,
                 "reply": "Let me check on your order.", "fallback": False,
                 "model_version": "shopbot:20261205-120000", "latency_ms": 2.4}
# One request example per operation, and the response examples per status.
_ROUTES: dict[str, dict[str, Any]] = {
    "/chat": {
        "request": ChatRequest, "response": ChatResponse, "many": False, "summary": "Answer one message",
        "example": {"message": "where is my order", "session_id": "s-42"},
        "ok": _CHAT_EXAMPLE,
    },
    "/chat_batch": {
        "request": ChatBatchRequest, "response": ChatResponse, "many": True, "summary": "Answer many messages",
        "example": {"messages": ["where is my order", "thanks"], "session_id": "s-42"},
        "ok": [_CHAT_EXAMPLE],
    },
    "/feedback": {
        "request": FeedbackRequest, "response": FeedbackResponse, "many": False, "summary": "Rate an answer",
        "example": {"request_id": _CHAT_EXAMPLE["request_id"], "rating": "down", "correct_intent": "cancel_order",
                    "comment": "I wanted to cancel"},
        "ok": {"accepted": True, "request_id": _CHAT_EXAMPLE["request_id"]},
    },
}
_ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"detail": "message: Value error, message must not be empty or whitespace",
          "errors": [{"loc": ["message"], "msg": "Value error, message must not be empty or whitespace",
                      "type": "value_error"}]},
    404: {"detail": "unknown request_id '0123456789abcdef0123456789abcdef'"},
    409: {"detail": "this answer has feedback already (one per request_id)"},
    413: {"detail": "request body over 1000000 bytes"},
    401: {"detail": "send Authorization: Bearer <token>"},
    415: {"detail": "send Content-Type: application/json (got 'application/x-www-form-urlencoded')"},
    422: {"detail": "unknown intent 'buy_a_unicorn'", "known_intents": ["cancel_order", "oos", "order_status"]},
    429: {"detail": "feedback rate limit per client"},
    500: {"detail": "An unexpected error has occurred, please check the server log."},
    503: {"detail": "service not ready: model is still loading"},
}
_INFRA_TEXT = {"/livez": "alive", "/healthz": "alive", "/readyz": "ready", "/metrics": "Prometheus text format"}


def _openapi30(node: Any) -> Any:
    """pydantic's JSON Schema (2020-12) in the OpenAPI 3.0 dialect: ``anyOf [X, null]`` -> ``nullable``."""
    if isinstance(node, list):
        return [_openapi30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi30(v) for k, v in node.items()}
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        out.pop("anyOf")
        if len(rest) == 1 and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        elif len(rest) == 1:
            out["allOf"] = rest
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def _components(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {name: _openapi30(schema) for name, schema in sorted(schemas.items())}


def _json(schema: dict, example: Any) -> dict:
    return {"schema": schema, "example": example}


def _error_response(route: str, status: int, when: str) -> dict:
    example = {"type": "about:blank", "title": title_for(status), "status": status, **_ERROR_EXAMPLES.get(status, {})}
    example.setdefault("detail", title_for(status))
    content = _json({"$ref": REF.format(model="Problem")}, example)
    response: dict[str, Any] = {"description": f"{title_for(status)}: {when}", "content": {PROBLEM_MEDIA_TYPE: content}}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying (when known).",
                                               "schema": {"type": "integer", "minimum": 0}}}
    return response


def _operation(route: str, spec: dict[str, Any], generated: dict) -> dict:
    request, response = spec["request"], spec["response"]
    ok_schema: dict[str, Any] = {"$ref": REF.format(model=response.__name__)}
    if spec["many"]:
        ok_schema = {"type": "array", "items": ok_schema}
    ok: dict[str, Any] = {"description": "Successful Response", "content": {"application/json": _json(ok_schema,
                                                                                                       spec["ok"])}}
    if route in ("/chat", "/chat_batch"):  # each answer can be rated: the request_id flows into /feedback
        pointer = "$response.body#/request_id" if route == "/chat" else "$response.body#/0/request_id"
        ok["links"] = {"RateThisAnswer": {
            "operationId": "feedback", "requestBody": {"request_id": pointer, "rating": "up"},
            "description": "Rate the (first) answer: its `request_id` is what /feedback expects."}}
    responses: dict[str, Any] = {"200": ok}
    for status, when in sorted(ROUTE_ERRORS[route].items()):
        responses[str(status)] = _error_response(route, status, when)
    name = generated.get("x-bentoml-name", route.strip("/"))
    return {
        "operationId": name,
        "summary": spec["summary"],
        "description": generated.get("description", ""),
        "tags": ["chat"],
        "x-bentoml-name": name,
        # Optional bearer auth: anonymous when BOTKIT_API_KEYS is empty (the default), a token otherwise.
        "security": [{}, {"bearerAuth": []}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=request.__name__)}, "example": spec["example"]}}},
        "responses": responses,
    }


def _infra(path: str, item: dict) -> dict:
    item = copy.deepcopy(item)
    for op in item.values():
        op["operationId"] = path.strip("/")
        op["responses"] = {"200": {"description": "Successful Response", "content": {"text/plain": {
            "schema": {"type": "string"}}}}}
        if path == "/readyz":
            op["responses"]["503"] = _error_response(path, 503, "The model is still loading or failed to load.")
    return item


def build_openapi(service: Any = None) -> dict:
    """The contract of ``service`` (default: ``botkit.serving.service.Chat``) as a plain dict."""
    if service is None:
        from botkit.serving.service import Chat as service
    generated = service.openapi_spec.asdict()
    paths: dict[str, Any] = {}
    for path, item in generated["paths"].items():
        if path in _ROUTES:
            paths[path] = {"post": _operation(path, _ROUTES[path], item["post"])}
        else:
            paths[path] = _infra(path, item)
    missing = set(_ROUTES) - set(paths)
    if missing:
        raise RuntimeError(f"the service no longer has {sorted(missing)}: update botkit.serving.contract")
    models = [spec[k] for spec in _ROUTES.values() for k in ("request", "response")] + [Problem, FieldError]
    return {
        "openapi": "3.0.3",
        "info": {"title": "botkit chat API", "version": API_VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [{"name": "chat", "description": "The chat bot's API."},
                 *[t for t in generated.get("tags", []) if t.get("name") == "Infrastructure"]],
        "paths": paths,
        "components": {"schemas": _components(models), "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "Needed only when the service is configured with API keys (BOTKIT_API_KEYS): "
                           "`Authorization: Bearer <token>`; without keys the API is open (401 never answered)."}}},
    }


def render(doc: dict) -> str:
    """The snapshot's text: stable key order, so a diff shows only real changes."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"  # ASCII: the pattern's invisible characters escaped


def write_snapshot(path: Path = SNAPSHOT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(build_openapi()), encoding="utf-8")
    return path


class ServeOpenAPI:
    """ASGI middleware: ``GET /docs.json`` answers the contract instead of BentoML's generated document."""

    def __init__(self, app, path: str = "/docs.json"):
        self.app, self.path = app, path
        self._response: JSONResponse | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != self.path or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        if self._response is None:
            self._response = JSONResponse(build_openapi())
        return await self._response(scope, receive, send)
