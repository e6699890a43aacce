#!/usr/bin/env python3
"""Self-test for mock_provider.py (stdlib only).

Starts the mock on port 0 via subprocess, exercises every endpoint and every
directive, and exits non-zero on the first failed check.  Prints
"mock selftest: N checks passed" on success.

    python3 test/mock/selftest_mock.py
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_provider.py")
KEY = "sk-mock-0123456789abcdef"
BAD_KEY = "sk-wrong-key-777"

OPENAI_PATH = "/v1/chat/completions"
AZURE_PATH = "/openai/deployments/my-dep/chat/completions?api-version=2024-10-21"
ANTHROPIC_PATH = "/v1/messages"
GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"

CHECKS = 0


class CheckFailed(Exception):
    pass


def check(name: str, condition: Any, detail: Any = "") -> None:
    global CHECKS
    if not condition:
        raise CheckFailed(f"FAILED: {name} {detail!s:.2000}")
    CHECKS += 1


# ---------------------------------------------------------------------------
# Mock process and HTTP helpers
# ---------------------------------------------------------------------------

class Mock:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="mockselftest.")
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen([sys.executable, MOCK, "--port", "0", "--port-file", port_file,
                                      "--log", os.path.join(self.dir, "log")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise CheckFailed(f"mock did not start: {self.proc.communicate()}")
            time.sleep(0.02)
        with open(port_file) as fh:
            text = fh.read()
        check("port file is digits + newline", text.endswith("\n") and text.strip().isdigit(), text)
        self.port = int(text)

    def stop(self) -> tuple[int, bytes]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode, err


class Resp:
    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers} {self.raw[:600]!r}>"


def conn_for(port: int, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def request(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            conn: http.client.HTTPConnection | None = None, raw_body: bytes | None = None,
            content_type: str | None = "application/json") -> Resp:
    own = conn is None
    conn = conn or conn_for(port)
    hdrs = dict(headers or {})
    if content_type is not None:
        hdrs.setdefault("Content-Type", content_type)
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        if own:
            conn.close()


def openai_headers(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def anthropic_headers(key: str = KEY) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def gemini_headers(key: str = KEY) -> dict[str, str]:
    return {"x-goog-api-key": key}


def oa_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": text}], **extra}


def an_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-3-5-sonnet-20241022", "max_tokens": 1024, "system": "Be brief.",
            "messages": [{"role": "user", "content": text}], **extra}


def gm_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]}, **extra}


def tokens(s: str) -> int:
    return (len(s) + 3) // 4


class Client:
    """Per-protocol request helpers bound to one mock port."""

    def __init__(self, port: int) -> None:
        self.port = port

    def openai(self, text: str, **kw: Any) -> Resp:
        return request(self.port, "POST", OPENAI_PATH, oa_body(text), openai_headers(), **kw)

    def azure(self, text: str, **kw: Any) -> Resp:
        body = {"messages": [{"role": "user", "content": text}]}
        return request(self.port, "POST", AZURE_PATH, body, {"api-key": KEY}, **kw)

    def anthropic(self, text: str, **kw: Any) -> Resp:
        return request(self.port, "POST", ANTHROPIC_PATH, an_body(text), anthropic_headers(), **kw)

    def gemini(self, text: str, **kw: Any) -> Resp:
        return request(self.port, "POST", GEMINI_PATH, gm_body(text), gemini_headers(), **kw)

    def stats(self) -> dict[str, Any]:
        return request(self.port, "GET", "/_mock/stats", content_type=None).json

    def reset(self) -> None:
        check("reset", request(self.port, "POST", "/_mock/reset", content_type=None).json == {})


def answer_of(protocol: str, r: Resp) -> Any:
    body = r.json
    if protocol in ("openai", "azure"):
        return body["choices"][0]["message"]["content"]
    if protocol == "anthropic":
        return "".join(b["text"] for b in body["content"])
    return "".join(p["text"] for p in body["candidates"][0]["content"]["parts"])


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

def test_success_shapes(c: Client) -> None:
    r = c.openai("Hello   there  ")
    check("openai 200", r.status == 200, r)
    b = r.json
    check("openai shape", b["object"] == "chat.completion" and b["id"].startswith("chatcmpl-mock-")
          and isinstance(b["created"], int) and b["model"] == "gpt-4o-mini" and b["system_fingerprint"] is None
          and b["service_tier"] == "default", b)
    ch = b["choices"][0]
    check("openai message", ch["message"] == {"role": "assistant", "content": "mock answer: Hello   there",
                                               "refusal": None, "annotations": []} and ch["logprobs"] is None
          and ch["finish_reason"] == "stop", ch)
    prompt = tokens("Be brief.") + 4 + tokens("Hello   there  ") + 4
    u = b["usage"]
    check("openai usage", u["prompt_tokens"] == prompt and u["completion_tokens"] == tokens("mock answer: Hello   there")
          and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
          and u["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
          and u["completion_tokens_details"]["reasoning_tokens"] == 0, u)
    check("openai headers", r.headers["x-request-id"].startswith("req_mock_")
          and r.headers["x-ratelimit-remaining-requests"] == "999"
          and r.headers["content-type"] == "application/json" and "content-length" in r.headers, r.headers)

    r = request(c.port, "POST", "/openai/v1/chat/completions", oa_body("groq"), openai_headers())
    check("openai with path prefix (groq style)", r.status == 200 and answer_of("openai", r) == "mock answer: groq", r)

    r = c.azure("hi azure")
    check("azure 200, model = deployment", r.status == 200 and r.json["model"] == "my-dep"
          and answer_of("azure", r) == "mock answer: hi azure", r)
    r = request(c.port, "POST", AZURE_PATH.replace("2024-10-21", "2024-08-01-preview"),
                {"model": "ignored", "messages": [{"role": "user", "content": "x"}]}, {"api-key": KEY})
    check("azure preview api-version and ignored model", r.status == 200 and r.json["model"] == "my-dep", r)

    r = c.anthropic("Hello anthropic")
    b = r.json
    check("anthropic 200 shape", r.status == 200 and b["type"] == "message" and b["role"] == "assistant"
          and b["id"].startswith("msg_mock_") and b["stop_reason"] == "end_turn" and b["stop_sequence"] is None
          and b["model"] == "claude-3-5-sonnet-20241022", b)
    check("anthropic answer split into two text blocks", len(b["content"]) == 2
          and all(blk["type"] == "text" and blk["text"] for blk in b["content"])
          and answer_of("anthropic", r) == "mock answer: Hello anthropic", b)
    prompt = tokens("Be brief.") + 4 + tokens("Hello anthropic") + 4
    check("anthropic usage", b["usage"]["input_tokens"] == prompt
          and b["usage"]["output_tokens"] == tokens("mock answer: Hello anthropic")
          and b["usage"]["cache_read_input_tokens"] == 0 and b["usage"]["cache_creation_input_tokens"] == 0, b)

    r = c.gemini("Hello gemini")
    b = r.json
    cand = b["candidates"][0]
    check("gemini 200 shape", r.status == 200 and cand["finishReason"] == "STOP" and cand["index"] == 0
          and cand["content"]["role"] == "model" and b["modelVersion"] == "gemini-2.0-flash"
          and b["responseId"].startswith("mock-"), b)
    check("gemini answer split into two parts", len(cand["content"]["parts"]) == 2
          and answer_of("gemini", r) == "mock answer: Hello gemini", b)
    um = b["usageMetadata"]
    prompt = tokens("Be brief.") + 4 + tokens("Hello gemini") + 4
    check("gemini usage", um["promptTokenCount"] == prompt
          and um["candidatesTokenCount"] == tokens("mock answer: Hello gemini")
          and um["totalTokenCount"] == um["promptTokenCount"] + um["candidatesTokenCount"]
          and "cachedContentTokenCount" not in um and "thoughtsTokenCount" not in um, um)

    r = request(c.port, "POST", GEMINI_PATH, {"contents": [{"role": "user", "parts": [{"text": "snake"}]}],
                                              "system_instruction": {"parts": [{"text": "s"}]},
                                              "generation_config": {"max_output_tokens": 100}}, gemini_headers())
    check("gemini accepts proto snake_case names", r.status == 200, r)

    # The last user message is used, not the last message.
    body = {"model": "m", "messages": [{"role": "user", "content": "first"},
                                       {"role": "assistant", "content": "a"},
                                       {"role": "user", "content": [{"type": "text", "text": "second "},
                                                                    {"type": "text", "text": "part"}]},
                                       {"role": "assistant", "content": "b"}]}
    r = request(c.port, "POST", OPENAI_PATH, body, openai_headers())
    check("openai last user message with text parts", answer_of("openai", r) == "mock answer: second part", r)


def test_max_tokens(c: Client) -> None:
    text = "y" * 100
    r = request(c.port, "POST", OPENAI_PATH, oa_body(text, max_tokens=5), openai_headers())
    check("openai truncation", answer_of("openai", r) == ("mock answer: " + text)[:20]
          and r.json["choices"][0]["finish_reason"] == "length" and r.json["usage"]["completion_tokens"] == 5, r)
    r = request(c.port, "POST", OPENAI_PATH, oa_body(text, max_completion_tokens=3), openai_headers())
    check("openai max_completion_tokens truncation", len(answer_of("openai", r)) == 12
          and r.json["choices"][0]["finish_reason"] == "length", r)
    body = an_body(text)
    body["max_tokens"] = 4
    r = request(c.port, "POST", ANTHROPIC_PATH, body, anthropic_headers())
    check("anthropic truncation", answer_of("anthropic", r) == ("mock answer: " + text)[:16]
          and r.json["stop_reason"] == "max_tokens", r)
    r = request(c.port, "POST", GEMINI_PATH, gm_body(text, generationConfig={"maxOutputTokens": 6}), gemini_headers())
    check("gemini truncation", answer_of("gemini", r) == ("mock answer: " + text)[:24]
          and r.json["candidates"][0]["finishReason"] == "MAX_TOKENS", r)
    r = request(c.port, "POST", OPENAI_PATH, oa_body("[[mock:echo]]", max_tokens=1), openai_headers())
    check("echo is never truncated", r.json["choices"][0]["finish_reason"] == "stop"
          and json.loads(answer_of("openai", r))["method"] == "POST", r)


def expect_error(name: str, r: Resp, want: int, protocol: str, needle: str | None = None, **fields: Any) -> None:
    check(f"{name}: status {want}", r.status == want, r)
    b = r.json
    if protocol == "openai":
        err = b["error"]
        check(f"{name}: openai error shape", set(err) == {"message", "type", "param", "code"}, b)
    elif protocol == "anthropic":
        err = b["error"]
        check(f"{name}: anthropic error shape", b["type"] == "error" and set(err) >= {"type", "message"}, b)
    elif protocol == "gemini":
        err = b["error"]
        check(f"{name}: gemini error shape", err["code"] == want and isinstance(err["status"], str), b)
    else:  # azure-native
        err = b["error"]
        check(f"{name}: azure error shape", isinstance(err["code"], str) and "message" in err, b)
    if needle is not None:
        check(f"{name}: message mentions {needle!r}", needle in err["message"], b)
    for key, value in fields.items():
        check(f"{name}: {key} == {value!r}", err.get(key) == value, b)
    check(f"{name}: key never echoed", KEY.encode() not in r.raw and BAD_KEY.encode() not in r.raw, b)


def test_openai_validation(c: Client) -> None:
    def post(body: Any, **kw: Any) -> Resp:
        return request(c.port, "POST", OPENAI_PATH, body, kw.pop("headers", openai_headers()), **kw)

    expect_error("unknown top-level field", post(oa_body("x", foo=1)), 400, "openai",
                 "Unrecognized request argument supplied: foo", param="foo", code=None)
    expect_error("bad role", post({"model": "m", "messages": [{"role": "human", "content": "x"}]}), 400,
                 "openai", "'human'", param="messages[0].role")
    expect_error("function role rejected", post({"model": "m", "messages": [{"role": "function", "content": "x"}]}),
                 400, "openai", "function")
    expect_error("unknown message key", post({"model": "m", "messages": [{"role": "user", "content": "x",
                                                                          "foo": 1}]}), 400, "openai", "foo")
    expect_error("missing model", post({"messages": [{"role": "user", "content": "x"}]}), 400, "openai", "model")
    expect_error("missing messages", post({"model": "m"}), 400, "openai", "messages")
    expect_error("empty messages", post({"model": "m", "messages": []}), 400, "openai", "messages")
    expect_error("temperature > 2", post(oa_body("x", temperature=3)), 400, "openai", "temperature")
    expect_error("top_p > 1", post(oa_body("x", top_p=1.5)), 400, "openai", "top_p")
    expect_error("max_tokens bool", post(oa_body("x", max_tokens=True)), 400, "openai", "max_tokens")
    expect_error("max_tokens 0", post(oa_body("x", max_tokens=0)), 400, "openai", "max_tokens")
    expect_error("max_tokens float", post(oa_body("x", max_tokens=10.0)), 400, "openai", "max_tokens")
    expect_error("stop > 4", post(oa_body("x", stop=["a", "b", "c", "d", "e"])), 400, "openai", "stop")
    expect_error("stream true", post(oa_body("x", stream=True)), 400, "openai", "stream")
    expect_error("n = 2", post(oa_body("x", n=2)), 400, "openai", "n")
    expect_error("content number", post({"model": "m", "messages": [{"role": "user", "content": 5}]}), 400,
                 "openai", "content")
    expect_error("unknown model", post(oa_body("x") | {"model": "unknown-model"}), 404, "openai",
                 "unknown-model", code="model_not_found")
    expect_error("invalid json", post(None, raw_body=b'{"model": '), 400, "openai", "JSON")
    expect_error("body not an object", post([1, 2]), 400, "openai", "object")
    expect_error("wrong content type", post(oa_body("x"), content_type="text/plain"), 400, "openai", "Content-Type")
    r = post(oa_body("charset ok"), content_type="application/json; charset=utf-8")
    check("content type with charset accepted", r.status == 200, r)
    r = post(oa_body("nulls ok", temperature=None, stop=None))
    check("openai optional nulls accepted", r.status == 200, r)
    r = post(oa_body("all params", temperature=0.5, top_p=1, max_tokens=100, stop="\n", n=1, stream=False,
                     presence_penalty=0.1, frequency_penalty=-0.1, seed=7, user="u", logprobs=False,
                     response_format={"type": "text"}, metadata={"a": "b"}, store=False, service_tier="auto"))
    check("openai all allowed params accepted", r.status == 200, r)
    expect_error("GET not allowed", request(c.port, "GET", OPENAI_PATH, headers=openai_headers(),
                                            content_type=None), 405, "openai")
    expect_error("missing auth", post(oa_body("x"), headers={}), 401, "openai")
    expect_error("bad auth", post(oa_body("x"), headers=openai_headers(BAD_KEY)), 401, "openai",
                 "Incorrect API key provided", type="invalid_request_error", code="invalid_api_key")
    expect_error("x-api-key is not openai auth", post(oa_body("x"), headers={"x-api-key": KEY}), 401, "openai")


def test_azure_validation(c: Client) -> None:
    body = {"messages": [{"role": "user", "content": "x"}]}
    expect_error("azure missing api-version",
                 request(c.port, "POST", "/openai/deployments/d/chat/completions", body, {"api-key": KEY}),
                 404, "azure", "Resource not found", code="404")
    expect_error("azure Authorization instead of api-key",
                 request(c.port, "POST", AZURE_PATH, body, openai_headers()), 401, "azure", code="401")
    expect_error("azure bad key", request(c.port, "POST", AZURE_PATH, body, {"api-key": BAD_KEY}), 401, "azure")
    expect_error("azure unknown field", request(c.port, "POST", AZURE_PATH, body | {"bogus": 1}, {"api-key": KEY}),
                 400, "openai", "bogus")
    expect_error("azure unknown deployment",
                 request(c.port, "POST", AZURE_PATH.replace("my-dep", "unknown-dep"), body, {"api-key": KEY}),
                 404, "azure", code="DeploymentNotFound")


def test_anthropic_validation(c: Client) -> None:
    def post(body: Any, headers: dict[str, str] | None = None) -> Resp:
        return request(c.port, "POST", ANTHROPIC_PATH, body, anthropic_headers() if headers is None else headers)

    def msgs(*pairs: tuple[str, Any]) -> dict[str, Any]:
        return {"model": "claude", "max_tokens": 10, "messages": [{"role": r, "content": t} for r, t in pairs]}

    expect_error("anthropic unknown field", post(an_body("x", stop=["a"])), 400, "anthropic", "stop",
                 type="invalid_request_error")
    missing = an_body("x")
    del missing["max_tokens"]
    expect_error("anthropic max_tokens required", post(missing), 400, "anthropic", "max_tokens")
    expect_error("anthropic max_tokens bool", post(an_body("x") | {"max_tokens": True}), 400, "anthropic",
                 "max_tokens")
    expect_error("anthropic system role", post(msgs(("system", "s"), ("user", "u"))), 400, "anthropic",
                 "top-level `system`")
    expect_error("anthropic first message assistant", post(msgs(("assistant", "a"), ("user", "u"))), 400,
                 "anthropic", "first message")
    expect_error("anthropic consecutive user", post(msgs(("user", "a"), ("user", "b"))), 400, "anthropic",
                 "alternate")
    expect_error("anthropic consecutive assistant", post(msgs(("user", "a"), ("assistant", "b"), ("assistant", "c"))),
                 400, "anthropic", "alternate")
    expect_error("anthropic empty content", post(msgs(("user", ""))), 400, "anthropic", "content")
    expect_error("anthropic temperature > 1", post(an_body("x", temperature=1.5)), 400, "anthropic", "temperature")
    expect_error("anthropic stream", post(an_body("x", stream=True)), 400, "anthropic", "stream")
    expect_error("anthropic missing version", post(an_body("x"), {"x-api-key": KEY}), 400, "anthropic",
                 "anthropic-version")
    expect_error("anthropic wrong version", post(an_body("x"), {"x-api-key": KEY, "anthropic-version": "2024-01-01"}),
                 400, "anthropic", "anthropic-version")
    expect_error("anthropic bad key", post(an_body("x"), anthropic_headers(BAD_KEY)), 401, "anthropic",
                 type="authentication_error")
    expect_error("anthropic bearer auth rejected", post(an_body("x"), {"Authorization": f"Bearer {KEY}",
                                                                       "anthropic-version": "2023-06-01"}),
                 401, "anthropic", type="authentication_error")
    expect_error("anthropic unknown model", post(an_body("x") | {"model": "unknown-claude"}), 404, "anthropic",
                 type="not_found_error")
    r = post({"model": "c", "max_tokens": 50, "system": [{"type": "text", "text": "sys"}],
              "messages": [{"role": "user", "content": [{"type": "text", "text": "blocks"}]},
                           {"role": "assistant", "content": "ok"},
                           {"role": "user", "content": "last one"}],
              "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"], "metadata": {"user_id": "u"}})
    check("anthropic blocks + alternation accepted", r.status == 200
          and answer_of("anthropic", r) == "mock answer: last one", r)


def test_gemini_validation(c: Client) -> None:
    def post(body: Any, path: str = GEMINI_PATH, headers: dict[str, str] | None = None) -> Resp:
        return request(c.port, "POST", path, body, gemini_headers() if headers is None else headers)

    def contents(*pairs: tuple[str, str]) -> dict[str, Any]:
        return {"contents": [{"role": r, "parts": [{"text": t}]} for r, t in pairs]}

    expect_error("gemini role assistant", post(contents(("user", "u"), ("assistant", "a"))), 400, "gemini",
                 "valid role", status="INVALID_ARGUMENT")
    expect_error("gemini role system", post(contents(("system", "s"), ("user", "u"))), 400, "gemini", "valid role")
    expect_error("gemini key in URL", post(gm_body("x"), GEMINI_PATH + "?key=" + KEY), 400, "gemini",
                 "URL", status="INVALID_ARGUMENT")
    expect_error("gemini unknown field", post(gm_body("x", temperature=0.5)), 400, "gemini", "temperature")
    expect_error("gemini unknown generationConfig field", post(gm_body("x", generationConfig={"max_tokens": 5})),
                 400, "gemini", "max_tokens")
    expect_error("gemini temperature range", post(gm_body("x", generationConfig={"temperature": 3})), 400, "gemini",
                 "temperature")
    expect_error("gemini empty parts", post({"contents": [{"role": "user", "parts": []}]}), 400, "gemini", "parts")
    expect_error("gemini empty contents", post({"contents": []}), 400, "gemini", "contents")
    expect_error("gemini bad key", post(gm_body("x"), headers=gemini_headers(BAD_KEY)), 401, "gemini",
                 status="UNAUTHENTICATED")
    expect_error("gemini missing key", post(gm_body("x"), headers={}), 401, "gemini")
    expect_error("gemini unknown model", post(gm_body("x"), GEMINI_PATH.replace("gemini-2.0-flash", "unknown-g")),
                 404, "gemini", status="NOT_FOUND")
    r = post({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
              "systemInstruction": {"role": "system", "parts": [{"text": "sys"}]},
              "generationConfig": {"temperature": 0.1, "topP": 1, "topK": 3, "maxOutputTokens": 50,
                                   "stopSequences": ["x"], "candidateCount": 1}})
    check("gemini systemInstruction with role tolerated, config accepted", r.status == 200, r)


def test_routing(c: Client) -> None:
    r = request(c.port, "POST", "/v1/completions", {"x": 1}, openai_headers())
    check("unknown path 404 json", r.status == 404 and "error" in r.json, r)
    r = request(c.port, "POST", "/v1beta/models/gemini:streamGenerateContent", gm_body("x"), gemini_headers())
    check("gemini stream endpoint 404", r.status == 404, r)


def test_error_directives(c: Client) -> None:
    r = c.openai("x [[mock:status=429]]")
    expect_error("openai 429", r, 429, "openai", "mock error 429", type="requests", code="rate_limit_exceeded")
    check("openai 429 retry-after default 1", r.headers.get("retry-after") == "1", r.headers)
    r = c.openai("x [[mock:status=400]][[mock:code=context_length_exceeded]][[mock:message=too long, sorry]]")
    expect_error("openai context length", r, 400, "openai", type="invalid_request_error",
                 code="context_length_exceeded", message="too long, sorry")
    expect_error("openai 500", c.openai("[[mock:status=500]]"), 500, "openai", type="server_error")
    r = c.azure("[[mock:status=503]][[mock:retry_after=3]]")
    expect_error("azure 503", r, 503, "openai", type="server_error")
    check("azure 503 retry-after 3", r.headers.get("retry-after") == "3", r.headers)
    for status, etype in ((400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
                          (404, "not_found_error"), (413, "request_too_large"), (429, "rate_limit_error"),
                          (500, "api_error"), (529, "overloaded_error"), (502, "api_error")):
        r = c.anthropic(f"[[mock:status={status}]]")
        expect_error(f"anthropic {status}", r, status, "anthropic", type=etype, message=f"mock error {status}")
    check("anthropic 502 has no retry-after", r.headers.get("retry-after") is None, r.headers)
    r = c.anthropic("[[mock:status=529]][[mock:retry_after=9]]")
    check("anthropic 529 retry-after 9", r.headers.get("retry-after") == "9", r.headers)
    r = c.anthropic("[[mock:status=400]][[mock:code=custom_error]]")
    expect_error("anthropic code override", r, 400, "anthropic", type="custom_error")
    for status, name in ((400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"),
                         (404, "NOT_FOUND"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")):
        r = c.gemini(f"[[mock:status={status}]]")
        expect_error(f"gemini {status}", r, status, "gemini", status=name)
    r = c.gemini("[[mock:status=429]][[mock:retry_after=4]]")
    check("gemini 429 retry-after + RetryInfo", r.headers.get("retry-after") == "4"
          and r.json["error"]["details"][0]["retryDelay"] == "4s", r)
    expect_error("unknown directive", c.openai("[[mock:stauts=500]]"), 400, "openai", "unknown mock directive stauts")
    expect_error("unknown directive anthropic", c.anthropic("[[mock:nope]]"), 400, "anthropic",
                 "unknown mock directive nope")
    expect_error("bad directive value", c.gemini("[[mock:status=abc]]"), 400, "gemini", "status")


def test_body_directives(c: Client) -> None:
    r = c.openai("[[mock:malformed]]")
    check("malformed", r.status == 200 and r.raw.startswith(b"{") and not _is_json(r.raw), r)
    for proto in ("anthropic", "gemini"):
        r = getattr(c, proto)("[[mock:malformed]]")
        check(f"malformed {proto}", r.status == 200 and not _is_json(r.raw), r)
    r = c.anthropic("[[mock:wrong_shape]]")
    check("wrong_shape", r.status == 200 and r.json == {"object": "list", "data": []}, r)
    r = c.gemini("[[mock:html]]")
    check("html 502", r.status == 502 and r.headers["content-type"].startswith("text/html")
          and b"<html>" in r.raw, r)
    r = c.openai("[[mock:empty]]")
    check("empty", r.status == 200 and r.raw == b"" and r.headers["content-length"] == "0", r)
    r = c.openai("[[mock:status=503]][[mock:empty]]")
    check("status + empty", r.status == 503 and r.raw == b"", r)
    r = c.openai("plain [[mock:text_plain]]")
    check("text_plain", r.status == 200 and r.headers["content-type"].startswith("text/plain")
          and answer_of("openai", r) == "mock answer: plain", r)
    r = c.openai("[[mock:redirect=http://127.0.0.1:1/elsewhere]]")
    check("redirect 307", r.status == 307 and r.headers["location"] == "http://127.0.0.1:1/elsewhere", r)
    r = c.gemini("zip me [[mock:gzip]]")
    check("gzip", r.status == 200 and r.headers.get("content-encoding") == "gzip"
          and int(r.headers["content-length"]) == len(r.raw)
          and answer_of("gemini", Resp(200, {}, gzip.decompress(r.raw))) == "mock answer: zip me", r)
    r = c.openai("big [[mock:oversize=200000]]")
    check("oversize", r.status == 200 and len(r.raw) >= 200000
          and answer_of("openai", r).startswith("mock answer: bigxxx"), len(r.raw))
    r = c.anthropic("big [[mock:oversize=5000]]")
    check("oversize anthropic", len(r.raw) >= 5000 and answer_of("anthropic", r).endswith("xxx"), len(r.raw))
    r = c.openai("[[mock:reply=Exactly this.]]")
    check("reply", answer_of("openai", r) == "Exactly this.", r)
    r = c.gemini("[[mock:reply=multi word reply]]")
    check("reply gemini", answer_of("gemini", r) == "multi word reply", r)
    r = c.openai("[[mock:finish=content_filter]]")
    check("finish override", r.json["choices"][0]["finish_reason"] == "content_filter", r)
    r = c.anthropic("[[mock:finish=stop_sequence]]")
    check("finish override anthropic", r.json["stop_reason"] == "stop_sequence", r)
    r = c.openai("[[mock:null_content]]")
    m = r.json["choices"][0]["message"]
    check("null_content openai", m["content"] is None and m["refusal"] == "mock refusal", r)
    r = c.anthropic("[[mock:null_content]]")
    check("null_content anthropic", r.json["content"] == [], r)
    r = c.gemini("[[mock:null_content]]")
    cand = r.json["candidates"][0]
    check("null_content gemini", "content" not in cand and cand["finishReason"] == "SAFETY", r)
    r = c.openai("[[mock:no_usage]]")
    check("no_usage openai", "usage" not in r.json, r)
    r = c.anthropic("[[mock:no_usage]]")
    check("no_usage anthropic", "usage" not in r.json, r)
    r = c.gemini("[[mock:no_usage]]")
    check("no_usage gemini", "usageMetadata" not in r.json, r)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
        return True
    except ValueError:
        return False


def test_usage_directives(c: Client) -> None:
    r = c.openai("[[mock:usage=1000,200]][[mock:cached=600]][[mock:reasoning=50]]")
    u = r.json["usage"]
    check("openai usage+cached+reasoning", u["prompt_tokens"] == 1000 and u["completion_tokens"] == 250
          and u["total_tokens"] == 1250 and u["prompt_tokens_details"]["cached_tokens"] == 600
          and u["completion_tokens_details"]["reasoning_tokens"] == 50, u)
    r = c.openai("[[mock:cached=2048]]")
    u = r.json["usage"]
    check("openai cached > computed prompt: prompt = cached", u["prompt_tokens"] == 2048
          and u["prompt_tokens_details"]["cached_tokens"] == 2048, u)
    r = c.anthropic("[[mock:usage=900,123]][[mock:cached=2048]][[mock:cache_write=100]][[mock:reasoning=7]]")
    u = r.json["usage"]
    check("anthropic additive usage", u["input_tokens"] == 900 and u["output_tokens"] == 130
          and u["cache_read_input_tokens"] == 2048 and u["cache_creation_input_tokens"] == 100, u)
    r = c.gemini("[[mock:usage=4796,77]][[mock:cached=4096]][[mock:reasoning=10]]")
    u = r.json["usageMetadata"]
    check("gemini usage", u["promptTokenCount"] == 4796 and u["candidatesTokenCount"] == 77
          and u["cachedContentTokenCount"] == 4096 and u["thoughtsTokenCount"] == 10
          and u["totalTokenCount"] == 4796 + 77 + 10, u)


def test_echo(c: Client) -> None:
    r = request(c.port, "POST", OPENAI_PATH + "?a=1", oa_body("[[mock:echo]]"),
                openai_headers() | {"X-Custom-Trace": "t1", "X-Other": "no", "User-Agent": "selftest"})
    e = json.loads(answer_of("openai", r))
    check("echo fields", e["method"] == "POST" and e["path"] == OPENAI_PATH and e["query"] == "a=1"
          and e["body"] == oa_body("[[mock:echo]]"), e)
    check("echo headers filtered and masked", e["headers"] == {
        "authorization": "<valid>", "content-type": "application/json", "user-agent": "selftest",
        "x-custom-trace": "t1"}, e)
    check("echo is compact sorted json", answer_of("openai", r) == json.dumps(e, sort_keys=True, separators=(",", ":")))
    r = c.anthropic("[[mock:echo]]")
    e = json.loads(answer_of("anthropic", r))
    check("echo anthropic headers", e["headers"]["x-api-key"] == "<valid>"
          and e["headers"]["anthropic-version"] == "2023-06-01", e)


def test_path_directives(c: Client) -> None:
    """Directives in the base URL path apply to every request through it."""
    path = "/mock:status=503/v1/chat/completions"
    r = request(c.port, "POST", path, oa_body("hi"), openai_headers())
    check("path directive status=503", r.status == 503, r)
    r = request(c.port, "POST", path, oa_body("hi [[mock:status=500]]"), openai_headers())
    check("a message directive overrides the path", r.status == 500, r)
    r = request(c.port, "POST", "/mock:slow_ms=100/openai/v1/chat/completions", oa_body("hi"), openai_headers())
    check("path directives with a prefix", r.status == 200 and answer_of("openai", r) == "mock answer: hi", r)


def test_keepalive_and_stats(c: Client) -> None:
    c.reset()
    s = c.stats()
    check("stats after reset", s == {"connections": 0, "open_connections": 0, "requests": 0,
                                     "in_flight": 0, "max_in_flight": 0, "last_request": None}, s)
    conn = conn_for(c.port)
    seen = []
    for i in range(3):
        r = request(c.port, "POST", OPENAI_PATH, oa_body("[[mock:conn]]"), openai_headers(), conn=conn)
        seen.append(json.loads(answer_of("openai", r)))
    check("keep-alive: same connection id", len({x["connection_id"] for x in seen}) == 1, seen)
    check("keep-alive: requests_on_connection 1,2,3", [x["requests_on_connection"] for x in seen] == [1, 2, 3], seen)
    r = request(c.port, "POST", OPENAI_PATH, oa_body("x", bogus=1), openai_headers(), conn=conn)
    check("keep-alive survives a 400", r.status == 400, r)
    r = request(c.port, "POST", OPENAI_PATH, oa_body("[[mock:conn]]"), openai_headers(), conn=conn)
    check("keep-alive after 400", json.loads(answer_of("openai", r))["requests_on_connection"] == 5, r)
    s = c.stats()
    check("stats counts one connection", s["connections"] == 1 and s["open_connections"] == 1
          and s["requests"] == 5, s)
    lr = s["last_request"]
    check("stats last_request", lr["method"] == "POST" and lr["path"] == OPENAI_PATH and lr["query"] == ""
          and lr["headers"]["authorization"] == "<valid>" and lr["body"]["messages"][1]["content"] == "[[mock:conn]]"
          and KEY not in json.dumps(s), lr)
    conn.close()
    deadline = time.monotonic() + 3
    while c.stats()["open_connections"] != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    check("open_connections drops after close", c.stats()["open_connections"] == 0)
    request(c.port, "POST", OPENAI_PATH, oa_body("x"), openai_headers(BAD_KEY))
    s = c.stats()
    check("stats masks invalid key", s["last_request"]["headers"]["authorization"] == "<invalid>"
          and s["connections"] == 2 and s["requests"] == 6, s)
    r = request(c.port, "POST", OPENAI_PATH, None, openai_headers(), raw_body=b"not json {")
    check("last_request raw text body", c.stats()["last_request"]["body"] == "not json {", r)

    # Chunked request body is accepted.
    conn = conn_for(c.port)
    conn.request("POST", OPENAI_PATH, body=iter([b'{"model":"m","messages":', b'[{"role":"user","content":"chunky"}]}']),
                 headers=openai_headers() | {"Content-Type": "application/json"}, encode_chunked=True)
    r = conn.getresponse()
    check("chunked request body", r.status == 200 and json.loads(r.read())["choices"][0]["message"]["content"]
          == "mock answer: chunky")
    conn.close()


def raw_exchange(port: int, body: dict[str, Any], headers: dict[str, str], path: str = OPENAI_PATH,
                 timeout: float = 10) -> tuple[bytes, float]:
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
           f"Content-Length: {len(data)}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode() + data)
        chunks = []
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            chunks.append(piece)
    return b"".join(chunks), time.monotonic() - start


def test_transport_directives(c: Client) -> None:
    try:
        c.openai("[[mock:close]]")
        check("close raises", False)
    except (http.client.RemoteDisconnected, ConnectionError):
        check("close: connection closed without response", True)
    raw, _ = raw_exchange(c.port, oa_body("[[mock:close]]"), openai_headers())
    check("close: zero bytes", raw == b"", raw)

    try:
        c.anthropic("half [[mock:close_mid]]")
        check("close_mid raises", False)
    except http.client.IncompleteRead as exc:
        check("close_mid: incomplete read", exc.expected > 0 and len(exc.partial) > 0, exc)
    raw, _ = raw_exchange(c.port, an_body("half [[mock:close_mid]]"), anthropic_headers(), ANTHROPIC_PATH)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0].split(b":")[1])
    check("close_mid: half the body", len(body) == length // 2 and head.startswith(b"HTTP/1.1 200"), raw)

    raw, elapsed = raw_exchange(c.port, oa_body("[[mock:chunked]]"), openai_headers())
    head, _, body = raw.partition(b"\r\n\r\n")
    check("chunked: header, no content-length", b"transfer-encoding: chunked" in head.lower()
          and b"content-length" not in head.lower(), head)
    sizes = []
    rest = body
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        sizes.append(size)
        rest = rest[size + 2:]
        if size == 0:
            break
    check("chunked: several chunks", len(sizes) >= 3 and sizes[-1] == 0, sizes)
    r = c.openai("[[mock:chunked]][[mock:gzip]]")
    check("chunked + gzip via http.client", gzip.decompress(r.raw).startswith(b"{"), r)
    r = c.gemini("chunky [[mock:chunked]]")
    check("chunked gemini decoded", answer_of("gemini", r) == "mock answer: chunky", r)

    start = time.monotonic()
    r = c.openai("t [[mock:trickle_ms=2]][[mock:no_usage]]")
    elapsed = time.monotonic() - start
    check("trickle: full body slowly", answer_of("openai", r) == "mock answer: t" and elapsed >= len(r.raw) * 0.002 * 0.9,
          (elapsed, len(r.raw)))

    start = time.monotonic()
    r = c.openai("slow [[mock:slow_ms=300]]")
    check("slow_ms", r.status == 200 and time.monotonic() - start >= 0.3)

    # A client that gives up must not leave the handler sleeping.
    c.reset()
    conn = conn_for(c.port, timeout=0.3)
    try:
        request(c.port, "POST", OPENAI_PATH, oa_body("[[mock:slow_ms=60000]]"), openai_headers(), conn=conn)
        check("slow client timeout", False)
    except (TimeoutError, socket.timeout):
        pass
    conn.close()
    deadline = time.monotonic() + 3
    while c.stats()["open_connections"] and time.monotonic() < deadline:
        time.sleep(0.02)
    check("slow_ms stops when the client disconnects", c.stats()["open_connections"] == 0, c.stats())

    data = json.dumps(oa_body("x" * 100 + "[[mock:trickle_ms=200]]")).encode()
    with socket.create_connection(("127.0.0.1", c.port), timeout=5) as sock:
        sock.sendall(f"POST {OPENAI_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Authorization: Bearer {KEY}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
    check("trickle: headers sent first", received.startswith(b"HTTP/1.1 200"), received)
    deadline = time.monotonic() + 3
    while c.stats()["open_connections"] and time.monotonic() < deadline:
        time.sleep(0.02)
    check("trickle stops when the client disconnects", c.stats()["open_connections"] == 0, c.stats())


def test_expect_continue(c: Client) -> None:
    curl = shutil.which("curl")
    if not curl:
        print("mock selftest: curl not found, skipping 100-continue check")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(oa_body("big " + "z" * 1_200_000), fh)
        path = fh.name
    try:
        out = subprocess.run([curl, "-sS", "-v", "--http1.1", "-H", "Expect: 100-continue",
                              "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {KEY}",
                              "--data-binary", f"@{path}", f"http://127.0.0.1:{c.port}{OPENAI_PATH}"],
                             capture_output=True, timeout=30)
    finally:
        os.unlink(path)
    check("curl 100-continue: got 100 Continue", b"HTTP/1.1 100 Continue" in out.stderr, out.stderr[-2000:])
    body = json.loads(out.stdout)
    check("curl 100-continue: 200 with >1MB body", body["choices"][0]["message"]["content"].startswith(
        "mock answer: big zzz") and body["usage"]["prompt_tokens"] > 300_000, out.stdout[:300])


def test_process(c: Client) -> None:
    out = subprocess.run([sys.executable, MOCK, "--port", "0", "--host", "0.0.0.0"], capture_output=True, timeout=10)
    check("non-loopback host refused with exit 2", out.returncode == 2 and b"loopback" in out.stderr, out)
    out = subprocess.run([sys.executable, MOCK, "--port", "0", "--host", "10.1.2.3"], capture_output=True, timeout=10)
    check("private address refused with exit 2", out.returncode == 2, out)
    r = request(c.port, "HEAD", "/_mock/stats", content_type=None)
    check("HEAD /_mock/stats", r.status == 200 and r.raw == b"", r)
    r = request(c.port, "GET", "/_mock/reset", content_type=None)
    check("GET /_mock/reset is 405", r.status == 405, r)


def check_not_counted(c: Client, what: str) -> None:
    s = c.stats()
    check(f"{what}: not counted in /_mock/stats", s["requests"] == 0 and s["connections"] == 0
          and s["last_request"] is None, s)


def test_webhooks(c: Client) -> None:
    c.reset()

    def hook(name: str, body: Any = None, **kw: Any) -> Resp:
        return request(c.port, "POST", f"/_mock/hook/{name}", body, kw.pop("headers", None), **kw)

    def records(name: str) -> dict[str, Any]:
        r = request(c.port, "GET", f"/_mock/hooks/{name}", content_type=None)
        check(f"GET /_mock/hooks/{name} 200", r.status == 200, r)
        return r.json

    # fail=N: the first N requests to a name fail, later ones succeed.
    start = time.time()
    got = [hook("alerts.prod-1?fail=2", {"alert": i}, headers={"X-Signature": f"sig-{i}"}) for i in (1, 2, 3)]
    check("fail=2: 500, 500, 200", [r.status for r in got] == [500, 500, 200], got)
    check("fail body", got[0].json == {"error": "mock webhook failure"}
          and got[0].headers["content-type"] == "application/json", got[0])
    check("success body", got[2].json == {"ok": True}, got[2])
    h = records("alerts.prod-1")
    att = h["attempts"]
    check("attempts recorded in order", [a["n"] for a in att] == [1, 2, 3]
          and [a["status"] for a in att] == [500, 500, 200]
          and [a["body"] for a in att] == [{"alert": 1}, {"alert": 2}, {"alert": 3}], att)
    check("attempt record keys", all(set(a) == {"n", "status", "body", "headers", "at"} for a in att), att)
    check("attempt headers lower-case, unmasked", [a["headers"]["x-signature"] for a in att]
          == ["sig-1", "sig-2", "sig-3"] and att[0]["headers"]["content-type"] == "application/json"
          and all(k == k.lower() for k in att[0]["headers"]), att[0])
    check("attempt times", all(isinstance(a["at"], float) for a in att)
          and start - 1 <= att[0]["at"] <= att[1]["at"] <= att[2]["at"] <= time.time() + 1, att)
    check("delivered = bodies answered 2xx", h["delivered"] == [{"alert": 3}], h)
    r = hook("alerts.prod-1?fail=2", {"alert": 4})
    check("fail count is per name since reset (4th request succeeds)", r.status == 200, r)
    r = hook("other_hook?fail=1", {"x": 1})
    check("another name has its own fail count", r.status == 500, r)
    r = hook("other_hook", {"x": 2})
    check("no fail= succeeds", r.status == 200 and r.json == {"ok": True}, r)

    # status= overrides fail.
    r = hook("st?status=503", {"s": 1})
    check("status=503", r.status == 503 and r.json == {"error": "mock webhook failure"}, r)
    r = hook("st?status=202&fail=5", {"s": 2})
    check("status=202 overrides fail", r.status == 202 and r.json == {"ok": True}, r)
    r = hook("st?status=204", {"s": 3})
    check("status=204 empty body", r.status == 204 and r.raw == b"", r)
    r = hook("st?fail=0&status=410", {"s": 4})
    check("status=410", r.status == 410 and r.json == {"error": "mock webhook failure"}, r)
    h = records("st")
    check("status= recorded", [a["status"] for a in h["attempts"]] == [503, 202, 204, 410]
          and h["delivered"] == [{"s": 2}, {"s": 3}], h)

    # Content-Type and body checks; rejected requests are recorded too.
    r = hook("ct", {"a": 1}, content_type="text/plain")
    check("text/plain is 415", r.status == 415 and "application/json" in r.json["error"]["message"], r)
    r = hook("ct", raw_body=b'{"a": 2}', content_type=None)
    check("no Content-Type is 415", r.status == 415, r)
    r = hook("ct", {"a": 3}, content_type="application/json; charset=utf-8")
    check("Content-Type parameters allowed", r.status == 200, r)
    r = hook("ct", raw_body=b"not json {")
    check("invalid JSON body is 400", r.status == 400 and "error" in r.json, r)
    r = hook("ct", raw_body=b'"just a string"')
    check("any JSON value is accepted", r.status == 200, r)
    r = hook("ct", raw_body=b"")
    check("empty body is 400", r.status == 400, r)
    h = records("ct")
    att = h["attempts"]
    check("rejected requests recorded", [a["status"] for a in att] == [415, 415, 200, 400, 200, 400]
          and [a["body"] for a in att] == [{"a": 1}, {"a": 2}, {"a": 3}, None, "just a string", None], att)
    check("invalid body recorded raw", att[3]["raw"] == "not json {" and att[5]["raw"] == ""
          and "raw" not in att[0] and att[0]["headers"]["content-type"] == "text/plain", att)
    check("415 / 400 not delivered", h["delivered"] == [{"a": 3}, "just a string"], h)

    # Parameters.
    for query in ("?fail=x", "?fail=-1", "?status=199", "?status=600", "?delay_ms=30001", "?bogus=1"):
        r = hook(f"params{query}", {"q": query})
        check(f"bad parameter {query} is 400", r.status == 400 and "error" in r.json, r)
    start = time.monotonic()
    r = hook("slow?delay_ms=300", {"d": 1})
    check("delay_ms=300", r.status == 200 and time.monotonic() - start >= 0.3, r)
    for path in ("/_mock/hook/" + "a" * 65, "/_mock/hook/a%20b", "/_mock/hook/", "/_mock/hook/a/b",
                 "/_mock/hooks/a/b"):
        r = request(c.port, "POST" if "hook/" in path else "GET", path, {"p": 1})
        check(f"bad hook name {path[:30]} is 404", r.status == 404, r)
    r = request(c.port, "POST", "/_mock/hook/" + "a" * 64, {"p": 1})
    check("64-character name", r.status == 200, r)
    r = request(c.port, "GET", "/_mock/hook/alerts.prod-1", content_type=None)
    check("GET on a hook is 405", r.status == 405 and r.headers.get("allow") == "POST", r)
    r = request(c.port, "POST", "/_mock/hooks/alerts.prod-1", {"p": 1})
    check("POST on hook records is 405", r.status == 405, r)
    check("unknown name: empty lists", records("never-posted") == {"attempts": [], "delivered": []})

    r = request(c.port, "GET", "/_mock/hooks", content_type=None)
    check("GET /_mock/hooks lists attempt counts", r.status == 200 and r.json == {
        "alerts.prod-1": 4, "other_hook": 2, "st": 4, "ct": 6, "params": 6, "slow": 1, "a" * 64: 1}, r)
    check_not_counted(c, "webhook requests")

    c.reset()
    r = request(c.port, "GET", "/_mock/hooks", content_type=None)
    check("reset clears /_mock/hooks", r.status == 200 and r.json == {}, r)
    check("reset clears records", records("alerts.prod-1") == {"attempts": [], "delivered": []})
    r = hook("alerts.prod-1?fail=1", {"again": 1})
    check("reset restarts fail counts", r.status == 500 and records("alerts.prod-1")["attempts"][0]["n"] == 1, r)
    c.reset()


def test_rates(c: Client) -> None:
    c.reset()
    default = {"result": "success", "base_code": "USD", "rates": {"USD": 1, "BRL": 5.25, "EUR": 0.92}}
    gets = 0

    def get() -> Resp:
        nonlocal gets
        gets += 1
        return request(c.port, "GET", "/_mock/rates", content_type=None)

    def configure(body: Any = None, **kw: Any) -> Resp:
        return request(c.port, "POST", "/_mock/rates", body, **kw)

    def count() -> int:
        return request(c.port, "GET", "/_mock/rates/stats", content_type=None).json["requests"]

    check("rates count 0 after reset", count() == 0)
    r = get()
    check("default rates document", r.status == 200 and r.json == default
          and r.headers["content-type"] == "application/json", r)
    r = configure({"status": 503})
    check("POST /_mock/rates answers {}", r.status == 200 and r.json == {}, r)
    r = get()
    check("status 503", r.status == 503 and r.json == {"error": "mock rates failure"}, r)
    r = configure({"rates": {"USD": 1, "JPY": 150.5, "GBP": 0.79}, "base_code": "USD"})
    r = get()
    check("custom rates (a POST replaces the whole configuration)", r.status == 200 and r.json == {
        "result": "success", "base_code": "USD", "rates": {"USD": 1, "JPY": 150.5, "GBP": 0.79}}, r)
    configure({"base_code": "EUR", "rates": {"EUR": 1}})
    r = get()
    check("custom base_code", r.json == {"result": "success", "base_code": "EUR", "rates": {"EUR": 1}}, r)
    configure({"base": "EUR", "rates": {"EUR": 1, "USD": 1.08}})
    r = get()
    check("base key instead of base_code (frankfurter style)", r.status == 200 and r.json == {
        "result": "success", "base": "EUR", "rates": {"EUR": 1, "USD": 1.08}}, r)
    r = configure(raw_body=b'{"malformed": true, "status": 500}', content_type=None)
    check("POST /_mock/rates without Content-Type", r.status == 200 and r.json == {}, r)
    r = get()
    check("malformed: 200 with truncated JSON", r.status == 200 and r.raw == b'{"rates": ', r)
    for bad in ({"foo": 1}, {"status": 700}, {"status": 199}, {"status": "503"}, {"status": True},
                {"rates": {"USD": "1"}}, {"rates": [1]}, {"rates": {"USD": True}}, {"base_code": 1},
                {"base": None}, {"malformed": 1}, [1], "x"):
        r = configure(bad)
        check(f"bad rates config {bad!r} is 400", r.status == 400 and "error" in r.json, r)
    for raw in (b"nope", b""):
        r = configure(raw_body=raw)
        check(f"bad rates body {raw!r} is 400", r.status == 400, r)
    r = get()
    check("a rejected POST changes nothing", r.raw == b'{"rates": ', r)
    r = request(c.port, "HEAD", "/_mock/rates", content_type=None)
    check("HEAD /_mock/rates", r.status == 200 and r.raw == b"", r)
    r = request(c.port, "PUT", "/_mock/rates", {"status": 200})
    check("PUT /_mock/rates is 405", r.status == 405 and r.headers.get("allow") == "GET, POST", r)
    r = request(c.port, "POST", "/_mock/rates/stats", {})
    check("POST /_mock/rates/stats is 405", r.status == 405, r)
    r = request(c.port, "GET", "/_mock/rates/nope", content_type=None)
    check("unknown /_mock path is 404", r.status == 404, r)
    check("rates stats counts the GETs only", count() == gets, (count(), gets))
    check_not_counted(c, "rates requests")

    c.reset()
    check("reset zeroes the rates count", count() == 0)
    r = get()
    check("reset restores the default document", r.status == 200 and r.json == default, r)
    check("rates count after reset", count() == 1)
    check_not_counted(c, "rates requests after reset")


def test_shutdown_with_busy_connections() -> None:
    """SIGINT/SIGTERM exit 0 promptly even with idle keep-alive and in-flight slow requests."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        mock = Mock()
        idle = conn_for(mock.port)
        request(mock.port, "POST", OPENAI_PATH, oa_body("x"), openai_headers(), conn=idle)
        slow = socket.create_connection(("127.0.0.1", mock.port))
        data = json.dumps(oa_body("[[mock:slow_ms=60000]]")).encode()
        slow.sendall(f"POST {OPENAI_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Authorization: Bearer {KEY}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        time.sleep(0.2)
        start = time.monotonic()
        mock.proc.send_signal(sig)
        rc, err = mock.stop()
        check(f"signal {sig.name}: exit 0", rc == 0, (rc, err))
        check(f"signal {sig.name}: prompt exit", time.monotonic() - start < 3, time.monotonic() - start)
        idle.close()
        slow.close()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        return
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        print("mock selftest: no ::1 here, skipping IPv6 check")
        return
    d = tempfile.mkdtemp(prefix="mockselftest6.")
    pf = os.path.join(d, "port")
    proc = subprocess.Popen([sys.executable, MOCK, "--port", "0", "--port-file", pf, "--host", "::1"],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(pf) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        port = int(open(pf).read())
        conn = http.client.HTTPConnection("::1", port, timeout=5)
        conn.request("POST", ANTHROPIC_PATH, body=json.dumps(an_body("v6")),
                     headers=anthropic_headers() | {"Content-Type": "application/json"})
        r = conn.getresponse()
        check("IPv6 ::1 listener", r.status == 200
              and answer_of("anthropic", Resp(200, {}, r.read())) == "mock answer: v6")
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    mock = Mock()
    client = Client(mock.port)
    try:
        for test in (test_success_shapes, test_max_tokens, test_openai_validation, test_azure_validation,
                     test_anthropic_validation, test_gemini_validation, test_routing, test_error_directives,
                     test_body_directives, test_usage_directives, test_echo, test_path_directives, test_keepalive_and_stats,
                     test_transport_directives, test_expect_continue, test_process, test_webhooks,
                     test_rates):
            test(client)
    except CheckFailed as exc:
        print(exc, file=sys.stderr)
        mock.stop()
        return 1
    finally:
        if mock.proc.poll() is None and sys.exc_info()[0] is not None:
            mock.stop()
    rc, err = mock.stop()
    try:
        check("SIGTERM exits 0", rc == 0, rc)
        check("no tracebacks on stderr", b"Traceback" not in err, err[-3000:])
        test_shutdown_with_busy_connections()
        test_ipv6_loopback()
    except CheckFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"mock selftest: {CHECKS} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
