"""The published API contract, without a server: the snapshot is current, valid OpenAPI, lists every
status of the status table, and its message rule means what the validator does."""

from __future__ import annotations

import json
import re
import sys

import jsonschema_rs
import pytest
from openapi_spec_validator import validate

from botkit.serving.contract import SNAPSHOT, build_openapi, render
from botkit.serving.privacy import SESSION_ID_PATTERN
from botkit.serving.problems import PROBLEM_MEDIA_TYPE, ROUTE_ERRORS
from botkit.serving.schemas import MESSAGE_PATTERN, ChatRequest

REFRESH = "the contract changed: run `make openapi` (botkit openapi --write) and commit deploy/openapi.json"


@pytest.fixture(scope="module")
def doc() -> dict:
    return build_openapi()


def test_the_committed_snapshot_is_the_contract_the_code_builds(doc):
    assert SNAPSHOT.exists(), REFRESH
    assert SNAPSHOT.read_text(encoding="utf-8") == render(doc), REFRESH


def test_the_snapshot_is_valid_openapi():
    validate(json.loads(SNAPSHOT.read_text(encoding="utf-8")))  # raises with the path of the first problem


def test_every_route_lists_exactly_its_statuses_with_the_problem_schema(doc):
    for route, errors in ROUTE_ERRORS.items():
        responses = doc["paths"][route]["post"]["responses"]
        assert set(responses) == {"200", *map(str, errors)}, route
        for status in errors:
            content = responses[str(status)]["content"]
            assert list(content) == [PROBLEM_MEDIA_TYPE]
            assert content[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert content[PROBLEM_MEDIA_TYPE]["example"]["status"] == status
        assert doc["paths"][route]["post"]["requestBody"]["content"]["application/json"]["example"]


def test_chat_answers_link_their_request_id_to_feedback(doc):
    for route, pointer in (("/chat", "$response.body#/request_id"), ("/chat_batch", "$response.body#/0/request_id")):
        link = doc["paths"][route]["post"]["responses"]["200"]["links"]["RateThisAnswer"]
        assert link["operationId"] == doc["paths"]["/feedback"]["post"]["operationId"]
        assert link["requestBody"]["request_id"] == pointer


def test_request_examples_are_valid_by_the_models():
    from botkit.serving.contract import _ROUTES

    for spec in _ROUTES.values():
        spec["request"].model_validate(spec["example"])


def _accepted_by_service(field: str, text: str) -> bool:
    try:
        ChatRequest(**{"message": "hi", field: text})
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("field", "rule"), [("message", MESSAGE_PATTERN), ("session_id", SESSION_ID_PATTERN)])
def test_the_published_pattern_accepts_exactly_what_the_service_accepts(doc, field, rule):
    """Every character alone, after a space and after a letter: the JSON Schema validator schemathesis
    uses (jsonschema_rs, ECMAScript regex) and the service must agree on each, so schema-valid
    values are never refused and schema-invalid ones never answered."""
    schema = doc["components"]["schemas"]["ChatRequest"]["properties"][field]
    assert schema["pattern"] == rule
    published = jsonschema_rs.Draft4Validator({"type": "string", "pattern": schema["pattern"]})
    python = re.compile(rule)
    disagree = []
    # Every BMP character, and the astral planes sampled (none of them is in either class) plus their
    # format characters, which the service counts as visible (see schemas.INVISIBLE_CLASS).
    astral = [*range(0x10000, sys.maxunicode + 1, 251), 0x110BD, 0x1D173, 0xE0001, 0xE0020, 0xE007F]
    for code in [*range(0x10000), *astral]:
        if 0xD800 <= code <= 0xDFFF:  # lone surrogates are not valid JSON text
            continue
        ch = chr(code)
        for text in (ch, " " + ch, "a" + ch + "b"):
            service = _accepted_by_service(field, text)
            if service != published.is_valid(text) or service != bool(python.fullmatch(text)):
                disagree.append(f"U+{code:04X} in {text!r}")
    assert not disagree, disagree[:20]
