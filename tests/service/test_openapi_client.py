"""The contract against the live service: the served ``/docs.json`` is the committed snapshot, and a
client generated from that snapshot (openapi-python-client, into a temp folder) works, errors included."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.serving.contract import SNAPSHOT
from botkit.serving.problems import PROBLEM_MEDIA_TYPE

PACKAGE = "botkit_api_client"


def test_the_served_document_is_the_committed_snapshot(client):
    r = client.get("/docs.json")
    assert r.status_code == 200
    assert r.json() == json.loads(SNAPSHOT.read_text(encoding="utf-8")), (
        "the served contract differs from deploy/openapi.json: run `make openapi` and review the diff")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The client package generated from the snapshot, imported from a temp folder."""
    root = tmp_path_factory.mktemp("client")
    config = root / "config.yaml"
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")  # no formatter needed to use it
    cli = Path(sys.executable).with_name("openapi-python-client")
    proc = subprocess.run([str(cli), "generate", "--path", str(SNAPSHOT), "--meta", "none", "--config", str(config),
                           "--output-path", str(root / PACKAGE)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr  # nothing of the contract skipped
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_a_generated_client_answers_chats_batches_and_feedback(api, server, bot_tag):
    from botkit_api_client.api.chat import chat, chat_batch, feedback
    from botkit_api_client.models import (
        ChatBatchRequest,
        ChatRequest,
        ChatResponse,
        FeedbackRequest,
        FeedbackRequestRating,
        FeedbackResponse,
    )

    with api.Client(base_url=server.url, raise_on_unexpected_status=True, timeout=None) as c:
        one = chat.sync(client=c, body=ChatRequest(message="where is my order", session_id="s-1"))
        assert isinstance(one, ChatResponse), one
        assert one.intent == "order_status" and one.model_version == bot_tag and 0 <= one.confidence <= 1

        many = chat_batch.sync(client=c, body=ChatBatchRequest(messages=["where is my order", "thanks"]))
        assert isinstance(many, list) and [type(a) for a in many] == [ChatResponse, ChatResponse]
        assert many[0].intent == "order_status"

        up = FeedbackRequest(request_id=one.request_id, rating=FeedbackRequestRating.UP)
        rated = feedback.sync(client=c, body=up)
        assert isinstance(rated, FeedbackResponse) and rated.accepted and rated.request_id == one.request_id
        rated = feedback.sync(client=c, body=FeedbackRequest(request_id=many[1].request_id,
                                                             rating=FeedbackRequestRating.DOWN,
                                                             correct_intent="thanks", comment="fine"))
        assert isinstance(rated, FeedbackResponse) and rated.accepted


def test_a_generated_client_parses_the_errors_as_problem_details(api, server):
    from botkit_api_client.api.chat import chat, chat_batch, feedback
    from botkit_api_client.models import (
        ChatBatchRequest,
        ChatRequest,
        FeedbackRequest,
        FeedbackRequestRating,
        Problem,
    )

    with api.Client(base_url=server.url, raise_on_unexpected_status=True, timeout=None) as c:
        empty = chat.sync_detailed(client=c, body=ChatRequest(message=""))
        assert empty.status_code == 400 and empty.headers["content-type"] == PROBLEM_MEDIA_TYPE
        problem = empty.parsed
        assert isinstance(problem, Problem) and problem.status == 400 and problem.title == "Bad Request"
        assert [(e.loc, e.type_) for e in problem.errors] == [(["message"], "string_too_short")]

        blank = chat_batch.sync_detailed(client=c, body=ChatBatchRequest(messages=["hi", "\u200b "]))
        assert blank.status_code == 400 and "empty or whitespace" in blank.parsed.detail

        unknown = feedback.sync_detailed(client=c, body=FeedbackRequest(request_id="0" * 32,
                                                                        rating=FeedbackRequestRating.UP))
        assert unknown.status_code == 404
        assert isinstance(unknown.parsed, Problem) and unknown.parsed.status == 404
        assert "unknown request_id" in unknown.parsed.detail

        rid = chat.sync(client=c, body=ChatRequest(message="hello")).request_id
        wrong = feedback.sync_detailed(client=c, body=FeedbackRequest(request_id=rid, rating=FeedbackRequestRating.DOWN,
                                                                      correct_intent="buy_a_unicorn"))
        assert wrong.status_code == 422 and isinstance(wrong.parsed, Problem)
        assert "order_status" in wrong.parsed.known_intents


def test_with_api_keys_the_generated_authenticated_client_is_let_in_and_a_bare_one_gets_a_parsed_401(api, launch):
    from botkit_api_client.api.chat import chat
    from botkit_api_client.models import ChatRequest, ChatResponse, Problem

    from botkit.serving.guards import token_digest

    srv = launch(workers=1, env={"BOTKIT_API_KEYS": token_digest("s3cret-token")})
    body = ChatRequest(message="where is my order")
    with api.AuthenticatedClient(base_url=srv.url, token="s3cret-token", timeout=None) as c:
        assert isinstance(chat.sync(client=c, body=body), ChatResponse)
    with api.Client(base_url=srv.url, timeout=None) as c:
        refused = chat.sync_detailed(client=c, body=body)
    assert refused.status_code == 401 and isinstance(refused.parsed, Problem) and refused.parsed.status == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
