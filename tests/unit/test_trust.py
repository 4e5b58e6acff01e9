"""Trust building blocks without a server: keys, pseudonyms, session-id rules, Host allow-list,
rate limits, the log filter that withholds request data, and route labels for metrics."""

from __future__ import annotations

import io
import logging
import stat

import pytest
from pydantic import BaseModel, ValidationError

from botkit.core import keys
from botkit.serving.guards import RateLimiter, host_allowed, token_digest
from botkit.serving.logscrub import WithholdRequestData
from botkit.serving.privacy import check_session_id, pseudonym
from botkit.serving.schemas import ChatBatchRequest, ChatRequest

SECRET = "jane.doe@example.com 4111 1111 1111 1111 CANARY-7d1e"


def test_key_file_is_created_once_with_owner_only_permissions(tmp_path) -> None:
    path = tmp_path / "secrets" / "k.key"
    first = keys.key("id", path)
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    keys._cache.clear()
    assert keys.key("id", path) == first and len(first) >= 32


def test_keyed_hash_depends_on_the_key(tmp_path) -> None:
    a, b = tmp_path / "a.key", tmp_path / "b.key"
    assert keys.keyed_hash("id", "s-1", a) == keys.keyed_hash("id", "s-1", a)
    assert keys.keyed_hash("id", "s-1", a) != keys.keyed_hash("id", "s-1", b)


def test_pseudonym_groups_a_session_but_does_not_contain_it() -> None:
    p = pseudonym("jane.doe@example.com")
    assert p == pseudonym("jane.doe@example.com") != pseudonym("john@example.com")
    assert "jane" not in p and "example" not in p and p.startswith("s1:")
    assert pseudonym(None) is None


@pytest.mark.parametrize(
    "bad",
    ["", "a" * 129, "x\x00y", "line\nbreak", "tab\there", "bidi\u202eevil", "rtl\u2067x", "zero\u200bwidth",
     "bom\ufeff", "c1\x9b", " leading", "trailing ", "ls\u2028x", "nbsp\u00a0x"],
    ids=["empty", "129-chars", "nul", "newline", "tab", "rlo", "rli", "zwsp", "bom", "csi", "leading-space",
         "trailing-space", "line-separator", "nbsp"],
)
def test_session_id_with_control_format_or_bidi_characters_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        check_session_id(bad)
    assert bad.strip() == "" or bad not in str(err.value)
    for model, body in ((ChatRequest, {"message": "hi"}), (ChatBatchRequest, {"messages": ["hi"]})):
        with pytest.raises(ValidationError):
            model(**body, session_id=bad)


@pytest.mark.parametrize("good", ["s-1", "jane.doe@example.com", "Sitzung 42 – Küche", "a" * 128, "日本語のセッション"])
def test_printable_session_ids_are_accepted(good: str) -> None:
    assert ChatRequest(message="hi", session_id=good).session_id == good


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("127.0.0.1:3000", "localhost,127.0.0.1,::1", True),
        ("localhost", "localhost,127.0.0.1,::1", True),
        ("[::1]:3000", "localhost,127.0.0.1,::1", True),
        ("evil.example:3000", "localhost,127.0.0.1,::1", False),
        ("127.0.0.1.evil.example", "localhost,127.0.0.1,::1", False),
        ("", "localhost", False),
        ("bot.shop.example", ".shop.example", True),
        ("shop.example", ".shop.example", True),
        ("evilshop.example", ".shop.example", False),
        ("anything", "*", True),
    ],
)
def test_host_allow_list(host: str, allowed: str, ok: bool) -> None:
    assert host_allowed(host, [a.strip() for a in allowed.split(",")]) is ok


def test_rate_limiter_allows_the_limit_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(3, window_s=60)
    assert [limiter.check("k", now=t) for t in (0, 1, 2)] == [0, 0, 0]
    assert limiter.check("k", now=3) == pytest.approx(57)
    assert limiter.check("other", now=3) == 0
    assert limiter.check("k", now=60.5) == 0  # the first hit left the window


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(1, max_keys=100)
    for i in range(1_000):
        limiter.check(f"k{i}", now=0)
    assert len(limiter._hits) <= 101


def test_token_digest_is_sha256_hex() -> None:
    assert token_digest("t") == "e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8"


def _log_with_filter(exc: BaseException) -> str:
    buf = io.StringIO()
    logger = logging.getLogger("test.trust.logscrub")
    logger.handlers[:] = [logging.StreamHandler(buf)]
    logger.propagate = False
    logger.filters[:] = [WithholdRequestData()]
    try:
        raise exc
    except BaseException:
        logger.error("Exception on %s [%s]", "/chat", "POST", exc_info=True)
    return buf.getvalue()


def test_validation_error_in_a_log_line_keeps_where_and_what_but_not_the_input() -> None:
    class Body(BaseModel):
        message: int

    try:
        Body(message=SECRET)
    except ValidationError as exc:
        line = _log_with_filter(exc)
    assert "message: int_parsing" in line and "/chat" in line
    for part in ("CANARY", "4111", "jane"):
        assert part not in line


def test_any_exception_in_a_log_line_keeps_its_type_and_frames_but_not_its_message() -> None:
    line = _log_with_filter(ValueError(f"bad value {SECRET!r}"))
    assert "ValueError" in line and "test_trust.py" in line
    assert "CANARY" not in line and "4111" not in line


def test_unknown_paths_are_labelled_other_and_routes_keep_their_name() -> None:
    from botkit.serving import routelabels

    routelabels.install(["/chat", "/feedback"])
    assert routelabels.label_for("/chat") == "/chat"
    assert routelabels.label_for("/livez") == "/livez"
    assert routelabels.label_for("/static_content/swagger-ui.css") == "/static_content/swagger-ui.css"
    assert routelabels.label_for("/wp-admin/x.php") == routelabels.OTHER
    assert routelabels.label_for("/static_content/../../etc/passwd") == routelabels.OTHER
