"""Auth before body, a streamed body limit and error replies that echo nothing, against a real
``benchfarm api`` (uvicorn) process and a raw-socket client that watches for the answer while it
sends. The proof is in bytes, not seconds: the answer arrives after a few hundred KB of a 300 MB
body, and the server's resident memory does not grow by the body's size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator.api import auth
from tests.api.rawhttp import api_process, push, server_env

MB = 1024**2
BIG = 300 * MB
# what the kernel's socket buffers and one uvicorn read may take before the answer is seen:
# far below the 8 MB body limit, let alone the 300 MB body
SLACK = 6 * MB
RSS_GROWTH = 64 * MB  # a Python process's noise, a fifth of the body


@pytest.fixture
def served(svc_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[int, psutil.Process, dict[str, str]]]:
    submit = auth.create_token("guard-submit", ["submit"])
    reader = auth.create_token("guard-reader", ["read"])
    with api_process(server_env(svc_env), tmp_path / "api.log") as (port, proc):
        yield port, proc, {"submit": f"Bearer {submit}", "read": f"Bearer {reader}"}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unauthenticated_huge_body_is_401_before_it_is_read(served: tuple, chunked: bool) -> None:
    port, proc, _tokens = served
    before = proc.memory_info().rss
    got = push(port, "/runs", BIG, proc, chunked=chunked)
    assert got.status == 401 and b"Bearer" in got.body, got
    assert got.sent < SLACK, f"the 401 came after {got.sent} body bytes"
    assert got.peak_rss - before < RSS_GROWTH, (before, got.peak_rss)


def test_a_token_without_the_scope_is_403_before_the_body(served: tuple) -> None:
    port, proc, tokens = served
    got = push(port, "/runs", BIG, proc, headers={"Authorization": tokens["read"]}, chunked=True)
    assert got.status == 403 and b"'submit' scope" in got.body, got
    assert got.sent < SLACK


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_authorized_body_over_the_limit_is_413_while_it_streams(served: tuple, chunked: bool) -> None:
    port, proc, tokens = served
    before = proc.memory_info().rss
    got = push(port, "/runs", BIG, proc, headers={"Authorization": tokens["submit"]}, chunked=chunked)
    assert got.status == 413 and b"byte limit" in got.body, got
    limit = 8 * MB
    assert got.sent < (SLACK if not chunked else limit + SLACK), got.sent  # Content-Length: refused up front
    assert got.peak_rss - before < RSS_GROWTH, (before, got.peak_rss)


def test_a_rejected_body_is_not_echoed(served: tuple) -> None:
    port, proc, tokens = served
    marker = "Z" * 1000
    spec = marker * 3000  # 3 MB: under the body limit, over the spec's 1 MB field limit
    body = json.dumps({"spec": spec, "source": marker * 2, "extra" + marker: 1, "trigger": [marker] * 50}).encode()
    got = push(port, "/runs", len(body), proc, headers={"Authorization": tokens["submit"]}, payload=body)
    assert got.status == 422, got
    assert len(got.body) < 8000 and marker.encode()[:400] not in got.body, got.body[:500]
    reply = json.loads(got.body)
    assert {tuple(e) for e in (d.keys() for d in reply["detail"])} == {("loc", "msg", "type")}
    assert any(e["loc"][:2] == ["body", "spec"] and "at most" in e["msg"] for e in reply["detail"])
