"""Schemathesis against the live session server: generated requests for the three POST APIs, valid
(positive) and invalid (negative), must never get a 5xx and every answer must match the OpenAPI
document the service publishes.

Bounded and reproducible: 3 operations x 2 modes x ``EXAMPLES`` cases, ``derandomize=True`` and no
example database, so CI sends the same requests every run.

Why not ``schemathesis.pytest.from_fixture(...).parametrize()``: with schemathesis 4.32 under
pytest 9 it fails on every test (``'Function' object has no attribute '_nodeid'``, lazy.py), so the
operations' Hypothesis strategies are driven directly; the checks are the same functions.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

OPERATIONS = ["/chat", "/chat_batch", "/feedback"]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
EXAMPLES = 40  # per operation and mode: 240 cases in all
CHECKS = [not_a_server_error, response_schema_conformance]
BENTOML_ERRORS = ("InvalidArgument", "NotFound", "InternalServerError")


def correct_bentoml_error_schemas(doc: dict) -> list[str]:
    """BentoML 1.4.40 documents ``detail`` of its error bodies as a string, but its validation
    errors (400) send pydantic's list of error objects there. Document what it really sends, so the
    conformance check tests our schemas and not this known BentoML mismatch. Returns what was changed.
    """
    changed = []
    for name in BENTOML_ERRORS:
        detail = doc.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {}).get("detail")
        if detail is not None and detail.get("type") == "string":
            detail.pop("type")
            detail["anyOf"] = [{"type": "string"},
                               {"type": "array", "items": {"type": "object", "required": ["type", "loc", "msg"]}}]
            changed.append(name)
    return changed


@pytest.fixture(scope="session")
def api_schema(server):
    doc = httpx.get(server.url + "/docs.json", timeout=10).json()
    fixed = copy.deepcopy(doc)
    # If BentoML fixes its error schema, this test should learn of it: then drop the correction.
    assert correct_bentoml_error_schemas(fixed) == list(BENTOML_ERRORS)
    return schemathesis.openapi.from_dict(fixed)


@pytest.fixture(scope="session")
def http(server) -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="session")
def strategies(api_schema) -> dict:
    return {(path, mode): api_schema[path]["POST"].as_strategy(generation_mode=mode)
            for path in OPERATIONS for mode in MODES}


STATUS_SEEN: dict[tuple[str, str], Counter] = {}


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("path", OPERATIONS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_generated_requests_never_get_a_5xx_and_match_the_schema(server, http, strategies, path, mode, data):
    case = data.draw(strategies[(path, mode)], label="case")
    response = case.call_and_validate(base_url=server.url, session=http, checks=CHECKS, timeout=30)
    STATUS_SEEN.setdefault((path, mode.value), Counter())[response.status_code] += 1


def test_fuzzing_reached_both_valid_and_refused_answers(client):
    """The fuzz cases ran (same session, earlier in this module) and were not all refused or all accepted."""
    if not STATUS_SEEN:
        pytest.skip("the fuzz tests did not run in this session")
    seen = sum(STATUS_SEEN.values(), Counter())
    assert seen[200] > 0, STATUS_SEEN
    assert seen[400] > 0, STATUS_SEEN
    assert not [code for code in seen if code >= 500], STATUS_SEEN
    assert client.post("/chat", json={"message": "where is my order"}).status_code == 200
