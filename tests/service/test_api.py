"""Every endpoint of the running service, through real HTTP (and once through BentoML's own client)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from botkit.serving.serve import wait_ready

RESPONSE_FIELDS = {"request_id", "intent", "confidence", "reply", "fallback", "model_version", "latency_ms"}
IN_SCOPE = ["where is my order", "I want to cancel my order", "how do I reset my password",
            "my payment failed", "hello there", "which payment methods do you accept"]
OUT_OF_SCOPE = "what is the capital of australia"


def assert_chat_response(body: dict, model_version: str) -> None:
    assert set(body) == RESPONSE_FIELDS
    assert isinstance(body["request_id"], str) and len(body["request_id"]) == 32
    int(body["request_id"], 16)  # uuid4 hex
    assert isinstance(body["intent"], str) and body["intent"]
    assert isinstance(body["confidence"], float) and 0.0 <= body["confidence"] <= 1.0
    assert isinstance(body["reply"], str) and body["reply"].strip()
    assert isinstance(body["fallback"], bool)
    assert body["model_version"] == model_version
    assert isinstance(body["latency_ms"], float) and 0.0 <= body["latency_ms"] < 30_000


# ------------------------------------------------------------------------------------------ chat
def test_chat_answers_with_every_response_field(client, bot_tag):
    r = client.post("/chat", json={"message": "where is my order", "session_id": "s-1"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert_chat_response(body, bot_tag)
    assert body["intent"] == "order_status"
    assert body["fallback"] is False


def test_chat_gives_each_answer_a_new_request_id(client):
    ids = {client.post("/chat", json={"message": "hello"}).json()["request_id"] for _ in range(5)}
    assert len(ids) == 5


def test_out_of_scope_message_falls_back(client, bot_tag):
    r = client.post("/chat", json={"message": OUT_OF_SCOPE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_chat_response(body, bot_tag)
    assert body["fallback"] is True
    assert body["intent"] == "oos"


def test_chat_batch_answers_every_message_in_order(client, bot_tag):
    messages = ["where is my order", OUT_OF_SCOPE, "hello there"]
    r = client.post("/chat_batch", json={"messages": messages, "session_id": "batch-1"})
    assert r.status_code == 200, r.text
    answers = r.json()
    assert isinstance(answers, list) and len(answers) == len(messages)
    for body in answers:
        assert_chat_response(body, bot_tag)
    assert answers[0]["intent"] == "order_status"
    assert answers[1]["fallback"] is True
    assert len({a["request_id"] for a in answers}) == len(messages)


def test_chat_batch_agrees_with_single_chat(client):
    single = [client.post("/chat", json={"message": m}).json()["intent"] for m in IN_SCOPE]
    batch = client.post("/chat_batch", json={"messages": IN_SCOPE}).json()
    assert [b["intent"] for b in batch] == single


def test_sync_http_client_calls_chat_and_feedback(server, bot_tag):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, server_ready_timeout=30) as c:
        assert c.is_ready()
        answer = c.chat(message="where is my order")
        body = answer if isinstance(answer, dict) else answer.model_dump()
        assert_chat_response(body, bot_tag)
        assert body["intent"] == "order_status"
        fb = c.feedback(request_id=body["request_id"], rating="up")
        fb = fb if isinstance(fb, dict) else fb.model_dump()
        assert fb == {"accepted": True, "request_id": body["request_id"]}


# ------------------------------------------------------------------------------ health and docs
def test_livez_and_readyz_answer_200_once_the_model_is_loaded(client):
    for path in ("/livez", "/healthz", "/readyz"):
        r = client.get(path)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"


def test_metrics_endpoint_serves_prometheus_text(client):
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE botkit_chat_requests_total counter" in r.text
    assert "# TYPE bentoml_service_request_total counter" in r.text


def test_openapi_document_describes_chat_request_and_response(client):
    r = client.get("/docs.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert {"/chat", "/chat_batch", "/feedback", "/readyz", "/livez", "/metrics"} <= set(doc["paths"])

    def resolve(schema: dict) -> dict:  # the contract names its schemas in components
        return doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema

    chat = doc["paths"]["/chat"]["post"]
    request = resolve(chat["requestBody"]["content"]["application/json"]["schema"])
    assert request["required"] == ["message"]
    assert set(request["properties"]) == {"message", "session_id"}
    assert request["properties"]["message"]["type"] == "string"
    assert request["properties"]["message"]["minLength"] == 1
    assert request["properties"]["message"]["maxLength"] == 2000
    assert request["properties"]["message"]["description"]  # the field documents itself
    assert request.get("additionalProperties") is False  # extra fields are refused, and the docs say so

    response = resolve(chat["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(response["properties"]) == RESPONSE_FIELDS
    assert set(response["required"]) == RESPONSE_FIELDS
    assert response["properties"]["confidence"] == {**response["properties"]["confidence"],
                                                    "type": "number", "minimum": 0, "maximum": 1}
    assert response["properties"]["fallback"]["type"] == "boolean"

    batch = doc["paths"]["/chat_batch"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert batch["type"] == "array"
    item = doc["components"]["schemas"][batch["items"]["$ref"].rsplit("/", 1)[-1]]
    assert set(item["properties"]) == RESPONSE_FIELDS

    feedback = resolve(doc["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert set(feedback["required"]) == {"request_id", "rating"}
    assert feedback["properties"]["rating"]["enum"] == ["up", "down"]


# ---------------------------------------------------------------------------------- readiness
def first_answer(srv, path: str = "/readyz", timeout_s: float = 60) -> httpx.Response:
    """The first answer a just-started server gives at all (connection refused until it listens)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert srv.proc.poll() is None, f"server died:\n{srv.log_tail()}"
        assert time.monotonic() < deadline, f"server never answered:\n{srv.log_tail()}"
        try:
            return httpx.get(srv.url + path, timeout=5)
        except httpx.TransportError:
            time.sleep(0.05)


def test_readyz_and_chat_answer_503_until_the_startup_delay_has_passed(launch):
    # READY_WAIT_S=0: a request on a worker that is not ready is refused at once instead of waiting.
    srv = launch(wait=False, workers=1, env={"BOTKIT_STARTUP_DELAY_S": "3", "BOTKIT_READY_WAIT_S": "0"})
    assert first_answer(srv).status_code == 503, "ready before the startup delay had passed"

    chat = httpx.post(srv.url + "/chat", json={"message": "where is my order"}, timeout=10)
    assert chat.status_code == 503
    assert chat.headers["content-type"] == "application/problem+json"
    assert chat.json() == {"type": "about:blank", "title": "Service Unavailable", "status": 503,
                           "detail": "service not ready: model is still loading"}
    batch = httpx.post(srv.url + "/chat_batch", json={"messages": ["where is my order"]}, timeout=10)
    assert batch.status_code == 503
    assert "not ready" in batch.json()["detail"]
    feedback = httpx.post(srv.url + "/feedback", json={"request_id": "x" * 32, "rating": "up"}, timeout=10)
    assert feedback.status_code == 503
    assert "not ready" in feedback.json()["detail"]
    assert httpx.get(srv.url + "/livez", timeout=5).status_code == 200  # alive while not ready

    wait_ready(srv.url, timeout_s=60, proc=srv.proc)
    assert httpx.get(srv.url + "/readyz", timeout=5).status_code == 200
    chat = httpx.post(srv.url + "/chat", json={"message": "where is my order"}, timeout=10)
    assert chat.status_code == 200, chat.text
    assert chat.json()["intent"] == "order_status"


def test_chat_reaching_a_loading_worker_waits_for_the_model_instead_of_failing(launch):
    """Workers load on their own; one ready worker makes /readyz 200 while another still loads.
    A chat on the loading worker waits for it (up to BOTKIT_READY_WAIT_S) and is answered."""
    srv = launch(wait=False, workers=1, env={"BOTKIT_STARTUP_DELAY_S": "3", "BOTKIT_READY_WAIT_S": "30"})
    assert first_answer(srv).status_code == 503
    chat = httpx.post(srv.url + "/chat", json={"message": "where is my order"}, timeout=40)
    assert chat.status_code == 200, chat.text
    assert chat.json()["intent"] == "order_status"
    assert httpx.get(srv.url + "/readyz", timeout=5).status_code == 200


# ----------------------------------------------------------------------------------- feedback
def test_feedback_is_accepted_for_answers_from_either_worker(fresh_client, scrape):
    """Chats and feedback on fresh parallel connections: both workers answer, and feedback on an
    id the other worker answered is found in the shared event store."""
    started = time.time()
    messages = IN_SCOPE * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        chats = list(pool.map(lambda m: fresh_client.post("/chat", json={"message": m}), messages))
        assert [c.status_code for c in chats] == [200] * len(messages)
        ids = [c.json()["request_id"] for c in chats]
        ratings = ["up", "down"] * (len(ids) // 2)
        feedback = list(pool.map(lambda p: fresh_client.post("/feedback", json={"request_id": p[0], "rating": p[1]}),
                                 zip(ids, ratings, strict=True)))
    assert [f.status_code for f in feedback] == [200] * len(ids), [f.text for f in feedback if f.status_code != 200]
    assert [f.json() for f in feedback] == [{"accepted": True, "request_id": i} for i in ids]
    # Both workers took part (BentoML's per-process gauge carries the worker's pid).
    page = scrape()
    last = "bentoml_service_last_request_timestamp_seconds"
    served = {lab["pid"] for lab in page.labelsets(last) if page.value(last, **lab) >= started}
    assert len(served) == 2, f"only worker(s) {served} answered"


def test_feedback_with_a_known_correct_intent_is_accepted(client):
    rid = client.post("/chat", json={"message": "where is my order"}).json()["request_id"]
    r = client.post("/feedback", json={"request_id": rid, "rating": "down", "correct_intent": "delivery_time",
                                       "comment": "I asked when it arrives, mail me at a@b.example"})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": True, "request_id": rid}


def test_feedback_for_an_unknown_request_id_is_404(client):
    r = client.post("/feedback", json={"request_id": "0" * 32, "rating": "up"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404 and "unknown request_id" in r.json()["detail"]


def test_feedback_with_an_unknown_correct_intent_is_422(client):
    rid = client.post("/chat", json={"message": "hello"}).json()["request_id"]
    r = client.post("/feedback", json={"request_id": rid, "rating": "down", "correct_intent": "buy_a_unicorn"})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == 422 and "unknown intent 'buy_a_unicorn'" in body["detail"]
    assert "order_status" in body["known_intents"] and "oos" in body["known_intents"]


@pytest.mark.parametrize("rating", ["meh", "", "UP", None, 1])
def test_feedback_with_a_rating_other_than_up_or_down_is_400(client, rating):
    rid = client.post("/chat", json={"message": "hello"}).json()["request_id"]
    r = client.post("/feedback", json={"request_id": rid, "rating": rating})
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == 400 and body["detail"]
    assert any(d["loc"] == ["rating"] for d in body["errors"])
