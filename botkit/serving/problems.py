"""One error model for every 4xx/5xx answer: RFC 9457 problem details, and the table of who answers what.

Every error the chat API sends is ``application/problem+json``::

    {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "unknown request_id 'abc'"}

``type`` is ``about:blank`` (RFC 9457 section 4.2.1: the problem is what the status code says) and
``title`` is the status phrase, so a client branches on ``status``; ``detail`` is the human-readable
reason. Some problems carry extension members: ``errors`` (400: one entry per invalid field) and
``known_intents`` (422). Whoever answers an error uses :func:`problem`: the service (404, 422, 503),
the ASGI guards in ``botkit.serving.middleware`` (413, 415, and 429/401 there too), and
``ProblemResponses``, which rewrites what BentoML and Starlette answer themselves (their 400
validation errors, 404/405 routing, 500) into the same shape.

``ROUTE_ERRORS`` below is the one place that says which statuses each route can answer; the
published OpenAPI document (``botkit.serving.contract``) is built from it. A change here changes
``deploy/openapi.json``: refresh it with ``make openapi`` (``botkit openapi --write``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

__all__ = ["PROBLEM_MEDIA_TYPE", "ROUTE_ERRORS", "FieldError", "Problem", "problem", "title_for"]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    """One invalid part of a request body (pydantic's error, without the input echoed back)."""

    loc: list[str | int] = Field(description="Path to the invalid value, e.g. ['message'] or ['messages', 0].")
    msg: str = Field(description="What is wrong, for people.")
    type: str = Field(description="Machine-readable error kind, e.g. 'string_too_long', 'missing'.")


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error answer."""

    model_config = ConfigDict(extra="allow")
    type: str = Field("about:blank", description="A URI for the kind of problem; 'about:blank' means: see status.")
    title: str = Field(description="The HTTP status phrase, e.g. 'Bad Request'.")
    status: int = Field(ge=400, le=599, description="The HTTP status code, repeated for convenience.")
    detail: str = Field(description="What went wrong with this request, for people.")
    errors: list[FieldError] | None = Field(None, description="400 only: every invalid field of the body.")
    known_intents: list[str] | None = Field(None, description="422 only: the intents the model knows.")


def title_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, title: str | None = None, detail: str = "", *, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    """The one way to answer an error: ``problem(404, detail="unknown request_id 'x'")``.

    ``title`` defaults to the status phrase (what ``type: about:blank`` asks for); ``extra`` members
    (``errors=[...]``, ``known_intents=[...]``, ``retry_after_s=...``) go into the body as they are,
    and ``headers`` (``{"Retry-After": "2"}``) onto the response.
    """
    body = {"type": "about:blank", "title": title or title_for(status), "status": status,
            "detail": detail or title or title_for(status), **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


# Which error statuses each API route can answer, and when: the OpenAPI document lists exactly these
# (plus 200). Add a row when a route learns a new refusal, then `make openapi`.
_COMMON = {
    400: "The body is not valid JSON or does not match the request schema (`errors` lists each invalid field), "
         "or the Host header is not allowed (BOTKIT_ALLOWED_HOSTS).",
    401: "Only when API keys are configured (BOTKIT_API_KEYS): no valid `Authorization: Bearer <token>`.",
    413: "The request body is larger than the configured limit (BOTKIT_MAX_BODY_BYTES).",
    415: "The request is not `Content-Type: application/json` (forms and multipart are refused).",
    500: "An unexpected error inside the service (a bug: please report it with the time of the request).",
    503: "The model is still loading, or the event store did not acknowledge the events in time; "
         "retry after `Retry-After` seconds.",
}
ROUTE_ERRORS: dict[str, dict[int, str]] = {
    "/chat": dict(_COMMON),
    "/chat_batch": {
        **_COMMON,
        413: "The request body is over BOTKIT_MAX_BODY_BYTES, or all messages together are over "
             "BOTKIT_MAX_BATCH_CHARS characters.",
    },
    "/feedback": {
        **_COMMON,
        404: "No answer with this `request_id` is known (never given, or expired from the store).",
        422: "`correct_intent` is not an intent of the served model; `known_intents` lists them.",
        409: "This answer has feedback already (one per `request_id`).",
        429: "Too much feedback from this client (BOTKIT_FEEDBACK_PER_CLIENT_PER_MIN) or for this session; "
             "retry after `Retry-After` seconds.",
    },
}
