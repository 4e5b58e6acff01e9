"""Hostile and odd input: always a 4xx with a message a person can read, never a 5xx, and the
service keeps answering afterwards. Odd but real Unicode is a valid message and gets a 200."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

LIMIT = 1_000_000  # settings.max_body_bytes
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Bad:
    """A request that must be refused: ``status`` expected, ``says`` must appear in the error message."""

    id: str
    says: str
    json: object = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 400
    path: str = "/chat"


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON body sent in chunks (a generator body: chunked transfer encoding, no Content-Length)."""
    yield b'{"message": "'
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size
    yield b'"}'


CHAT_CASES = [
    Bad("empty message", "at least 1 character", json={"message": ""}),
    Bad("whitespace message", "empty or whitespace", json={"message": " \t\n\r  "}),
    Bad("unicode whitespace message", "empty or whitespace", json={"message": "\u00a0\u2003\u3000"}),
    Bad("zero-width only message", "empty or whitespace", json={"message": "\u200b\u200d\ufeff"}),
    Bad("message over 2000 characters", "at most 2000 characters", json={"message": "a" * 2001}),
    Bad("message over 2000 characters of emoji", "at most 2000 characters", json={"message": "📦" * 2001}),
    Bad("body over 1 MB with Content-Length", f"over {LIMIT} bytes", status=413, headers=JSON,
        content=b'{"message": "' + b"a" * LIMIT + b'"}'),
    Bad("invalid JSON", "Invalid JSON", content=b'{"message": "hi"', headers=JSON),
    Bad("JSON list", "Input should be an object", json=["where is my order"]),
    Bad("JSON string", "Input should be an object", json="where is my order"),
    Bad("JSON number", "Input should be an object", json=42),
    Bad("JSON null", "Input should be an object", content=b"null", headers=JSON),
    Bad("message is a number", "valid string", json={"message": 123}),
    Bad("message is null", "valid string", json={"message": None}),
    Bad("message is a list", "valid string", json={"message": ["where is my order"]}),
    Bad("message is an object", "valid string", json={"message": {"text": "hi"}}),
    Bad("extra field", "Extra inputs are not permitted", json={"message": "hi", "user": "admin"}),
    Bad("missing message", "Field required", json={"session_id": "s-1"}),
    Bad("empty body", "Field required", content=b"", headers=JSON),
    Bad("session_id over 128 characters", "at most 128 characters", json={"message": "hi", "session_id": "s" * 129}),
    Bad("binary garbage body", "Invalid JSON", content=bytes(range(256)) * 8, headers=JSON),
    Bad("binary garbage without content type", "application/json", status=415,
        content=b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"),
    Bad("binary garbage declared JSON", "Invalid JSON", content=b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", headers=JSON),
    Bad("text/plain garbage", "application/json", status=415, content="héllo wörld \x00 garbage".encode() + b"\xff\xfe",
        headers={"content-type": "text/plain"}),
    Bad("invalid UTF-8 inside a JSON string", "Invalid JSON", content=b'{"message": "caf\xe9"}', headers=JSON),
    Bad("lone surrogate escape", "Invalid JSON", content=b'{"message": "\\ud800"}', headers=JSON),
    Bad("NUL character", "control characters", json={"message": "where is\x00 my order"}),
    Bad("only a NUL character", "control characters", json={"message": "\x00"}),
    Bad("bell character", "control characters", json={"message": "hello\x07"}),
    Bad("escape sequence", "control characters", json={"message": "\x1b[31mred\x1b[0m order"}),
    Bad("backspace", "control characters", json={"message": "order\x08\x08\x08"}),
    Bad("DEL character", "control characters", json={"message": "order\x7f"}),
    Bad("C1 control character CSI", "control characters", json={"message": "order \x9b31m status"}),
    Bad("C1 control character NEL", "control characters", json={"message": "order\x85status"}),
]

BATCH_CASES = [
    Bad("batch: empty list", "at least 1 item", json={"messages": []}, path="/chat_batch"),
    Bad("batch: over 256 messages", "at most 256 items", json={"messages": ["hi"] * 257}, path="/chat_batch"),
    Bad("batch: one empty message", "at least 1 character", json={"messages": ["hi", ""]}, path="/chat_batch"),
    Bad("batch: one whitespace message", "empty or whitespace", json={"messages": ["hi", "  "]},
        path="/chat_batch"),
    Bad("batch: one message with NUL", "control characters", json={"messages": ["hi", "a\x00b"]},
        path="/chat_batch"),
    Bad("batch: messages is a string", "valid array", json={"messages": "hi"}, path="/chat_batch"),
    Bad("batch: message is a number", "valid string", json={"messages": ["hi", 3]}, path="/chat_batch"),
    Bad("batch: body over 1 MB", f"over {LIMIT} bytes", status=413, path="/chat_batch", headers=JSON,
        content=b'{"messages": ["' + b"a" * LIMIT + b'"]}'),
]

FEEDBACK_CASES = [
    Bad("feedback: empty request_id", "at least 1 character", json={"request_id": "", "rating": "up"},
        path="/feedback"),
    Bad("feedback: request_id over 64 characters", "at most 64 characters",
        json={"request_id": "a" * 65, "rating": "up"}, path="/feedback"),
    Bad("feedback: missing rating", "Field required", json={"request_id": "a" * 32}, path="/feedback"),
    Bad("feedback: extra field", "Extra inputs are not permitted",
        json={"request_id": "a" * 32, "rating": "up", "stars": 5}, path="/feedback"),
    Bad("feedback: comment over 2000 characters", "at most 2000 characters",
        json={"request_id": "a" * 32, "rating": "up", "comment": "x" * 2001}, path="/feedback"),
    Bad("feedback: invalid JSON", "Invalid JSON", content=b"{rating: up}", headers=JSON, path="/feedback"),
]


def _send(client: httpx.Client, case: Bad) -> httpx.Response:
    if case.content is not None:
        return client.post(case.path, content=case.content, headers=case.headers)
    return client.post(case.path, json=case.json, headers=case.headers)


def assert_refused_readably(r: httpx.Response, status: int, says: str) -> None:
    assert r.status_code < 500, f"server error {r.status_code}: {r.text[:300]}"
    assert r.status_code == status, f"{r.status_code}: {r.text[:300]}"
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert says in r.text, f"{says!r} not in {r.text[:300]}"


def assert_still_serving(client: httpx.Client) -> None:
    r = client.post("/chat", json={"message": "where is my order"})
    assert r.status_code == 200, r.text
    assert r.json()["intent"] == "order_status"


@pytest.mark.parametrize("case", CHAT_CASES + BATCH_CASES + FEEDBACK_CASES, ids=lambda c: c.id)
def test_bad_request_gets_a_readable_4xx_and_the_service_keeps_serving(client, case):
    assert_refused_readably(_send(client, case), case.status, case.says)
    assert_still_serving(client)


@pytest.mark.parametrize("path", ["/chat", "/chat_batch", "/feedback"])
def test_chunked_body_over_1mb_without_content_length_gets_413(server, path):
    """No Content-Length to refuse up front: the limit must hold while the body streams in."""
    with httpx.Client(base_url=server.url, timeout=30) as fresh:
        r = fresh.post(path, content=_chunks(LIMIT + 1), headers=JSON)
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
    assert_refused_readably(r, 413, f"over {LIMIT} bytes")
    with httpx.Client(base_url=server.url, timeout=30) as after:
        assert_still_serving(after)


def test_chunked_body_under_1mb_is_read_whole(client):
    """The limit must not cut a legitimate streamed body: a chunked request under it is answered."""
    body = [b'{"messages": [', b",".join([b'"where is my order"'] * 200), b"]}"]
    r = client.post("/chat_batch", content=iter(body), headers=JSON)
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 200, r.text
    assert [a["intent"] for a in r.json()] == ["order_status"] * 200


def test_body_of_exactly_the_limit_is_not_refused_for_size(client):
    padding = LIMIT - len(b'{"message": "hi", "session_id": ""}')
    content = b'{"message": "hi", "session_id": "' + b"s" * padding + b'"}'
    assert len(content) == LIMIT
    r = client.post("/chat", content=content, headers=JSON)
    assert r.status_code == 400  # refused by validation (session_id too long), not by size
    assert "at most 128 characters" in r.text


def test_message_of_exactly_2000_characters_is_answered(client):
    r = client.post("/chat", json={"message": "where is my order " + "x" * (2000 - 18)})
    assert r.status_code == 200, r.text


ODD_BUT_VALID = {
    "emoji": "where is my order 📦🚚",
    "emoji only": "👋",
    "zwj family emoji": "hello 👨\u200d👩\u200d👧\u200d👦",
    "flag and skin tone": "hi 🇩🇪 👍🏽",
    "zero-width joiner and non-joiner": "where\u200d is my\u200c order",
    "zero-width space inside": "where\u200bis my order",
    "byte order mark inside": "\ufeffwhere is my order",
    "rtl marks": "\u200fwhere is my order\u200e",
    "rtl override": "\u202eredro ym si erehw\u202c",
    "arabic": "أين طلبي",
    "hebrew with bidi isolate": "\u2067שלום\u2069 where is my order",
    "combining marks": "whe\u0301re i\u0308s my o\u0327rder",
    "zalgo": "h\u0336\u0337\u0338e\u0489l\u0489l\u0489o\u0489",
    "cjk": "我的订单在哪里",
    "math alphanumerics": "𝔴𝔥𝔢𝔯𝔢 𝔦𝔰 𝔪𝔶 𝔬𝔯𝔡𝔢𝔯",
    "fullwidth": "ｗｈｅｒｅ ｉｓ ｍｙ ｏｒｄｅｒ",
    "newlines and tabs": "where is\tmy order\nplease\r\n",
    "line and paragraph separators": "where is my order\u2028please\u2029thanks",
    "private use character": "order \ue000 status",
    "html and sql lookalikes": "<script>alert(1)</script>' OR 1=1; -- where is my order",
    "json lookalike": '{"message": "where is my order"}',
}


@pytest.mark.parametrize("message", list(ODD_BUT_VALID.values()), ids=list(ODD_BUT_VALID))
def test_odd_but_real_unicode_is_a_valid_message(client, bot_tag, message):
    r = client.post("/chat", json={"message": message})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == bot_tag
    assert 0.0 <= body["confidence"] <= 1.0 and body["reply"]


def test_odd_unicode_is_valid_in_a_batch_too(client):
    messages = list(ODD_BUT_VALID.values())
    r = client.post("/chat_batch", json={"messages": messages})
    assert r.status_code == 200, r.text
    assert len(r.json()) == len(messages)


NOT_JSON = {
    "multipart without boundary": ({"content-type": "multipart/form-data"}, b"message=hi"),
    "multipart with boundary": ({"content-type": "multipart/form-data; boundary=X"},
                                b'--X\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--X--\r\n'),
    "html form": ({"content-type": "application/x-www-form-urlencoded"}, b"message=hi"),
    "plain text": ({"content-type": "text/plain"}, b'{"message": "hi"}'),
    "no content type": ({}, b'{"message": "hi"}'),
    "json lookalike type": ({"content-type": "application/jsonx"}, b'{"message": "hi"}'),
    "gzip-encoded json": ({"content-type": "application/json", "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00"),
}


@pytest.mark.parametrize("path", ["/chat", "/chat_batch", "/feedback"])
@pytest.mark.parametrize("name", list(NOT_JSON))
def test_a_body_that_is_not_json_gets_415_never_200_or_500(client, path, name):
    """Forms and multipart would let any web page post without a CORS preflight; BentoML parses them
    (and answers 500 for multipart without a boundary). Only application/json gets through."""
    headers, content = NOT_JSON[name]
    r = client.post(path, content=content, headers=headers)
    if "content-type" not in headers:
        assert "content-type" not in r.request.headers
    assert_refused_readably(r, 415, "application/json")
    assert r.headers["accept-post"] == "application/json"


def test_json_with_a_charset_parameter_is_json(client):
    r = client.post("/chat", content=b'{"message": "where is my order"}',
                    headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_an_undeclared_method_gets_405_with_allow_as_problem_details(client, method):
    r = client.request(method, "/chat")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 405


def test_a_validation_error_lists_every_invalid_field(client):
    r = client.post("/feedback", json={"request_id": "", "rating": "meh", "stars": 5})
    assert_refused_readably(r, 400, "request_id")
    assert sorted(tuple(e["loc"]) for e in r.json()["errors"]) == [("rating",), ("request_id",), ("stars",)]
    assert all(e["msg"] and e["type"] for e in r.json()["errors"])
