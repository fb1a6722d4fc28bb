"""`assetbuild serve` fuzzed from its own OpenAPI schema (issue 9): schemathesis generates
requests for every HTTP operation of the real server (uvicorn on a free loopback port, as in
test_server.py) and every answer must be something other than a 5xx; afterwards the server
must still be healthy and speak.

Per operation, schemathesis' pytest integration runs its schema examples, its coverage cases
(boundary and just-out-of-bounds values of every field, missing and extra fields, wrong
types: deterministic) and a bounded number of generated cases, valid and invalid
(``max_examples``, derandomized: the same cases every run, no example database). About 30 s in
all. WebSockets (`/tts/stream`, `/events`) are not in the OpenAPI schema and are covered by
test_server_stream.py; the `/files` mount is not in it either (a StaticFiles mount), so a few
hand-written odd paths are sent to it below.

One 5xx is documented and allowed: 502 when the backend itself fails on a request that
validated (docs/server.md; e.g. a voice variant eSpeak does not have; a language or voice it
does not have is a 422), with the backend and its
cause in the body. Every other 5xx fails the test.
"""

from __future__ import annotations

import collections
import time

import pytest
import requests
import schemathesis
from conftest import SMALL, Project
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from test_server import BUILD_TIMEOUT, Served

from assetbuild.server.limits import Limits

# Generated cases per operation (on top of its examples and coverage cases). Synthesis is the
# slow one: each valid case is a real eSpeak line through the mastering chain, tens of ms.
EXAMPLES = 25
# POST /build takes no parameters (every case is the same request) and each one accepted runs
# an incremental build of the served project: fuzzed apart, with a few cases (202 and 409).
BUILD_EXAMPLES = 3
# Every operation of the schema, so that a new endpoint is not left out unnoticed.
OPERATIONS = ["GET /health", "GET /backends", "GET /models", "POST /tts/synthesize", "POST /tts/batch", "GET /tts/batch/{job_id}",
              "GET /tts/batch/{job_id}/results", "GET /assets", "GET /assets/{asset_id}", "GET /build",
              "POST /build", "GET /report"]

CALLS: collections.Counter[str] = collections.Counter()  # requests sent, per operation
STATUSES: collections.Counter[int] = collections.Counter()
BACKEND_FAILURES: list[dict] = []  # the documented 502s
JOBS: list[str] = []  # batch jobs the fuzzing started

FUZZ_SETTINGS = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served_fuzz")
    project = Project(root, SMALL)
    # Small limits, so that generated texts, bodies and batches also run into the 413 paths.
    limits = Limits(max_text_chars=200, max_body_bytes=8192, max_batch_items=4, workers=2)
    with Served(project.manifest, limits=limits) as s:
        s.project = project
        # Built first, so /assets, /assets/{id} and /report answer with the build (not only 404).
        assert s.build()["status"] == "finished"
        yield s


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_url(served.url + "/openapi.json")


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


schema = schemathesis.pytest.from_fixture("api_schema")


def call(case, served, session):
    response = case.call(base_url=served.url, session=session, timeout=60)
    label = f"{case.operation.method.upper()} {case.operation.path}"
    CALLS[label] += 1
    STATUSES[response.status_code] += 1
    if label == "POST /tts/batch" and response.status_code == 202:
        JOBS.append(response.json()["id"])
    if response.status_code == 502 and label == "POST /tts/synthesize":
        body = response.json()
        if body.get("backend") and body.get("cause"):  # the documented backend failure
            BACKEND_FAILURES.append({"request": case.body, "cause": body["cause"]})
            return
    case.validate_response(response, checks=[not_a_server_error])


@schema.exclude(method="POST", path="/build").parametrize()
@settings(max_examples=EXAMPLES, **FUZZ_SETTINGS)
def test_no_server_error(case, served, session):
    call(case, served, session)


@schema.include(method="POST", path="/build").parametrize()
@settings(max_examples=BUILD_EXAMPLES, **FUZZ_SETTINGS)
def test_no_server_error_build(case, served, session):
    call(case, served, session)


def healthy(served) -> None:
    h = served.client.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok", h.text
    r = served.synth(text="Still speaking.", voice="guide")
    assert r.status_code == 200 and r.content[:4] == b"RIFF", r.text


def test_every_operation_is_fuzzed(api_schema):
    labels = sorted(result.ok().label for result in api_schema.get_all_operations())
    assert labels == sorted(OPERATIONS)


def test_files_mount_odd_paths(served):
    # Not in the schema (a mount): traversal, encoded separators, NUL, long and non-UTF-8 names.
    paths = ["/files/", "/files/..", "/files/../assetbuild.toml", "/files/%2e%2e/assetbuild.toml",
             "/files/dialogue%2fline_01.wav", "/files/%00", "/files/" + "a" * 4000, "/files/%ff%fe",
             "/files/dialogue/line_01.wav/extra", "/assets/%2e%2e%2fassetbuild.toml", "/assets/%00"]
    for path in paths:
        r = served.client.get(path)
        CALLS["GET /files"] += 1
        assert r.status_code < 500, (path, r.status_code, r.text)
        assert b"[project]" not in r.content, path  # nothing from outside the output folder
    healthy(served)


def test_fuzzing_really_ran_and_the_server_is_healthy(served):
    # Runs last (file order): the fuzzing above sent real requests, and answered them all.
    assert sum(CALLS.values()) >= 400, CALLS
    assert all(CALLS[label] >= 1 for label in OPERATIONS), CALLS
    assert CALLS["POST /tts/synthesize"] >= 100 and CALLS["POST /tts/batch"] >= 50, CALLS
    assert not any(status >= 500 and status != 502 for status in STATUSES), STATUSES
    assert STATUSES[502] == len(BACKEND_FAILURES), BACKEND_FAILURES
    # Both the accepted and the refused paths were exercised.
    assert STATUSES[200] > 0 and STATUSES[202] > 0 and STATUSES[422] > 0 and STATUSES[413] > 0, STATUSES
    # The batch jobs it started finish, and none of their items is a server error either.
    assert JOBS
    deadline = time.monotonic() + BUILD_TIMEOUT
    for job_id in JOBS:
        while served.client.get(f"/tts/batch/{job_id}").json()["status"] != "finished":
            assert time.monotonic() < deadline, "a fuzzed batch did not finish"
            time.sleep(0.05)
        for item in served.client.get(f"/tts/batch/{job_id}/results").json()["items"]:
            assert item["status"] < 500 or (item["status"] == 502 and item.get("cause")), item
    healthy(served)
