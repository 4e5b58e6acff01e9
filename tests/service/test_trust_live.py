"""Trust on a real server: nothing of a rejected request in any log file, pseudonymous session ids
in the event store, unknown paths that do not grow /metrics, a Host allow-list, no CORS by default,
optional bearer auth, and feedback rate limits with Retry-After."""

from __future__ import annotations

import random
import string
import time
from pathlib import Path

import httpx

from botkit.core.config import settings
from botkit.serving.guards import token_digest
from botkit.serving.privacy import pseudonym

CANARY = "CANARY-5f3a9c"
CARD = "4111 1111 1111 1111"
MAIL = "leak.me@example.com"
JSON = {"content-type": "application/json"}

# Each carries the canary, a card number and an e-mail address, and each is refused.
BAD_BODIES = [
    ("/chat", {"message": f"card {CARD} {CANARY} \x00 {MAIL}"}),  # control character
    ("/chat", {"message": f"{CANARY} {CARD} " + "x" * 2100}),  # too long
    ("/chat", {"message": f"hi {CANARY}", "session_id": f"{MAIL}\u202e{CANARY}"}),  # bidi in session_id
    ("/chat", {"message": f"hi {CANARY}", "session_id": f"{CANARY}\x00{CARD}"}),  # NUL in session_id
    ("/chat", {"message": f"hi {CANARY}", "extra": f"{CANARY} {CARD}"}),  # extra field
    ("/chat", {"message": 12, "session_id": f"{CANARY} {MAIL}"}),  # wrong type, planted id
    ("/chat_batch", {"messages": [f"ok {CANARY}", f"bad \x07 {CARD} {CANARY}"], "session_id": MAIL}),
    ("/feedback", {"request_id": f"{CANARY}" * 5, "rating": "up", "comment": f"{CARD} {MAIL}"}),
    ("/feedback", {"request_id": "abc", "rating": f"sideways {CANARY}", "comment": CARD}),
]
RAW_BODIES = [
    b'{"message": "' + CANARY.encode() + b" " + CARD.encode() + b'"',  # invalid JSON
    b'{"message": "' + CANARY.encode() + b'\\ud800 ' + MAIL.encode() + b'"}',  # lone surrogate
]


def _log_files(server) -> list[Path]:
    """The server's own log and every file under any logs folder of the test home."""
    files = {server.log_path}
    for folder in (settings.home, Path(server.environment()["BENTOML_HOME"])):
        files.update(p for p in folder.rglob("*.log") if p.is_file())
        files.update(p for p in folder.rglob("logs/*") if p.is_file())
    return sorted(files)


def test_rejected_requests_leave_no_planted_secret_in_any_log_file(server, client) -> None:
    for path, body in BAD_BODIES:
        r = client.post(path, json=body)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
    for raw in RAW_BODIES:
        assert 400 <= client.post("/chat", content=raw, headers=JSON).status_code < 500
    time.sleep(0.5)  # workers' log lines reach the file
    files = _log_files(server)
    text = "\n".join(p.read_text(errors="replace") for p in files)
    # The failures were logged (so this test can fail), but without their input.
    assert "validation error(s)" in text, text[-2000:]
    for secret in (CANARY, CARD, CARD.replace(" ", ""), MAIL, "input_value"):
        assert secret not in text, f"{secret!r} found in {[str(p) for p in files]}"


def test_session_id_is_stored_as_a_keyed_pseudonym_not_as_sent(server, client) -> None:
    from botkit.serving.events import open_store

    r = client.post("/chat", json={"message": "where is my order", "session_id": MAIL})
    assert r.status_code == 200, r.text
    rid = r.json()["request_id"]
    store = open_store("sqlite", path=settings.events_path)
    try:
        event = None
        for _ in range(50):
            event = store.get_chat(rid)
            if event is not None:
                break
            time.sleep(0.1)
    finally:
        store.close()
    assert event is not None
    assert event.session_id == pseudonym(MAIL)  # same key file: the same session groups together
    assert MAIL not in event.session_id and "example" not in event.session_id
    raw = settings.events_path.read_bytes()
    assert MAIL.encode() not in raw


def _metrics_lines(client: httpx.Client) -> int:
    return len(client.get("/metrics").text.splitlines())


def test_two_thousand_unknown_paths_add_no_metrics_series(client, capsys) -> None:
    client.get("/no-such-path-warmup")  # the one "other" series exists from here on
    before = _metrics_lines(client)
    rng = random.Random(14)
    for _ in range(2_000):
        path = "/" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
        assert client.get(path).status_code == 404
    after = _metrics_lines(client)
    with capsys.disabled():
        print(f"\n/metrics lines before 2,000 unknown paths: {before}, after: {after}")
    assert after - before <= 5  # a few counters of known series may appear, never one per path
    assert 'endpoint="other"' in client.get("/metrics").text


def test_host_not_on_the_allow_list_is_refused_but_probes_are_not(client) -> None:
    evil = {"host": "attacker.example"}
    r = client.post("/chat", json={"message": "where is my order"}, headers=evil)
    assert r.status_code == 400 and "Host" in r.json()["detail"]
    assert client.get("/livez", headers=evil).status_code == 200
    assert client.get("/readyz", headers=evil).status_code == 200
    assert client.post("/chat", json={"message": "hi"}, headers={"host": "localhost:3000"}).status_code == 200


def test_cors_is_off_by_default(client) -> None:
    origin = {"origin": "https://attacker.example"}
    r = client.post("/chat", json={"message": "where is my order"}, headers=origin)
    assert r.status_code == 200 and not any(k.startswith("access-control-") for k in r.headers)
    pre = client.options("/chat", headers={**origin, "access-control-request-method": "POST"})
    assert pre.status_code >= 400 and not any(k.startswith("access-control-") for k in pre.headers)


def test_bearer_auth_guards_the_api_when_keys_are_set_and_feedback_is_rate_limited(launch) -> None:
    token = "s3cret-token-for-tests"
    srv = launch(env={"BOTKIT_API_KEYS": f"{token_digest('other')},{token_digest(token)}",
                      "BOTKIT_FEEDBACK_PER_CLIENT_PER_MIN": "3", "BOTKIT_FEEDBACK_LIMIT_LOOPBACK": "true"})
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for bad in ({}, {"authorization": "Bearer wrong"}, {"authorization": token}):
            r = c.post("/chat", json={"message": "hi"}, headers=bad)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert c.post("/chat_batch", json={"messages": ["hi"]}).status_code == 401
        assert c.post("/feedback", json={"request_id": "x", "rating": "up"}).status_code == 401
        assert c.get("/livez").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200  # open unless BOTKIT_PROTECT_METRICS
        r = c.post("/chat", json={"message": "where is my order"}, headers=auth)
        assert r.status_code == 200
        codes = [c.post("/feedback", json={"request_id": f"unknown-{i}", "rating": "up"}, headers=auth)
                 for i in range(4)]
        assert [x.status_code for x in codes[:3]] == [404, 404, 404]
        assert codes[3].status_code == 429 and 1 <= int(codes[3].headers["retry-after"]) <= 60
    log = srv.log_path.read_text(errors="replace")
    assert token not in log


def test_second_feedback_for_one_answer_is_409_on_any_worker(client, fresh_client) -> None:
    rid = client.post("/chat", json={"message": "where is my order"}).json()["request_id"]
    first = client.post("/feedback", json={"request_id": rid, "rating": "down", "correct_intent": "delivery_time"})
    assert first.status_code == 200, first.text
    again = [c.post("/feedback", json={"request_id": rid, "rating": "down", "correct_intent": "cancel_order"})
             for c in (client, fresh_client, fresh_client, fresh_client)]
    assert [r.status_code for r in again] == [409] * 4, [r.text for r in again]
    assert again[0].json()["status"] == 409


def test_feedback_beyond_the_per_session_limit_is_429_with_retry_after(client) -> None:
    from botkit.core.config import settings as s

    session = "flood-session-" + "".join(random.choices(string.ascii_lowercase, k=8))
    ids = [client.post("/chat", json={"message": "where is my order", "session_id": session}).json()["request_id"]
           for _ in range(s.feedback_per_session_per_min + 1)]
    codes = [client.post("/feedback", json={"request_id": rid, "rating": "up"}) for rid in ids]
    assert [r.status_code for r in codes[:-1]] == [200] * s.feedback_per_session_per_min
    assert codes[-1].status_code == 429 and 1 <= int(codes[-1].headers["retry-after"]) <= 60
    # Another session is not affected.
    rid = client.post("/chat", json={"message": "hello", "session_id": session + "-other"}).json()["request_id"]
    assert client.post("/feedback", json={"request_id": rid, "rating": "up"}).status_code == 200
