#!/usr/bin/env python3
r"""Strict mock of LLM provider HTTP APIs for the llm_gateway test suite.

Speaks four wire protocols (see shared/PROVIDERS.md), validates requests as
strictly as the real services and answers with exactly their response shapes.
Python 3.11 standard library only.

Usage
-----
    python3 mock_provider.py --port 0 --port-file /tmp/mock.port \
        [--host 127.0.0.1] [--api-key KEY] [--log FILE]

* Listens on a loopback address only (127.x.x.x, ::1 or "localhost"); any
  other --host makes it exit with status 2.
* ``--port 0`` picks a free port.  Once the socket is listening, the bound
  port (digits + newline) is written atomically (tmp file + rename) to
  --port-file, so a harness can poll for that file.
* The API key (default ``sk-mock-0123456789abcdef``) is valid for all four
  protocols.  Keys are never echoed back.
* SIGTERM / SIGINT shut the server down cleanly (exit status 0).
* Quiet: request/error lines go to --log FILE if given, else nowhere.
* ``--tls-cert FILE [--tls-key FILE]`` serves HTTPS instead of plain HTTP
  (the TLS verification tests use a self-signed certificate).
* HTTP/1.1 with keep-alive, ``Expect: 100-continue`` and chunked request
  bodies.  Responses always carry Content-Length unless the ``chunked``
  directive is used.

Endpoints (PREFIX may be empty or any path, e.g. ``/openai`` for Groq)
---------
=========  ==================================================================
openai     POST PREFIX/v1/chat/completions           Authorization: Bearer KEY
azure      POST PREFIX/openai/deployments/DEPLOYMENT/chat/completions
                ?api-version=YYYY-MM-DD[-preview]     api-key: KEY
anthropic  POST PREFIX/v1/messages                    x-api-key: KEY
                                                      anthropic-version: 2023-06-01
gemini     POST PREFIX/v1beta/models/MODEL:generateContent   x-goog-api-key: KEY
control    GET  /_mock/stats   -> {"connections": N, "open_connections": K, "in_flight": F, "max_in_flight": M,
                                   "requests": R, "last_request": {...}|null}
           POST /_mock/reset   -> {} (zeroes connections/requests/last_request, clears the
                                   webhook records, restores the default rates document)
webhook    POST /_mock/hook/NAME[?fail=N&status=CODE&delay_ms=N]  -> {"ok": true} | {"error": ...}
           GET  /_mock/hooks/NAME  -> {"attempts": [...], "delivered": [...]}
           GET  /_mock/hooks   -> {"NAME": attempts, ...}
rates      GET  /_mock/rates   -> {"result": "success", "base_code": "USD", "rates": {...}}
           POST /_mock/rates   -> {} (configures what later GETs return)
           GET  /_mock/rates/stats -> {"requests": R}
=========  ==================================================================

Anything else is a 404 JSON error.  A non-POST method on a provider path is
405.  Check order: route, method, URL checks (Azure api-version, Gemini key in
URL), auth (401), anthropic-version header, Content-Type (must be
application/json, parameters allowed), JSON object body, field validation
(400), unknown model (404: model / deployment name starting with "unknown"),
directives.

Every error uses the provider's own error shape:
  openai/azure: {"error": {"message", "type", "param", "code"}}
                (Azure's own routing/auth errors: {"error": {"code": "404", "message": ...}})
  anthropic:    {"type": "error", "error": {"type", "message"}}
  gemini:       {"error": {"code": 400, "message", "status": "INVALID_ARGUMENT"}}

Errors of the ``/_mock/*`` endpoints themselves (unknown control path 404,
wrong method 405 with an Allow header, bad parameter or body 400,
Content-Type 415) carry {"error": {"message": ...}}.

Webhook sink (thread-safe)
--------------------------
The gateway POSTs alert notifications to webhooks; point one at
``http://127.0.0.1:PORT/_mock/hook/NAME`` (NAME = ``[A-Za-z0-9_.-]{1,64}``).

* Query parameters, all optional (anything else is a 400):
  ``fail=N`` answers the first N requests to NAME (counted since the start or
  the last reset, whatever their outcome) with 500 {"error": "mock webhook
  failure"}, later ones with 200 {"ok": true}; ``status=CODE`` (200-599)
  always answers CODE instead (overrides fail; a 2xx gets {"ok": true}, 204 /
  304 an empty body, anything else the failure body); ``delay_ms=N``
  (0-30000) waits before answering (stops early if the client disconnects).
* Checks, in order: parameters (400), Content-Type must be application/json,
  parameters allowed (415), the body must be a JSON value (400).
* EVERY request to NAME, rejected or not, is recorded when it arrives (before
  delay_ms), in arrival order: {"n": 1, 2, ... per NAME, "status": the status
  answered, "body": parsed JSON or null, "headers": {lower-case name: value,
  nothing masked}, "at": unix time (float)}; a body that is not JSON is
  recorded as "body": null plus "raw": its text.
* ``GET /_mock/hooks/NAME`` -> {"attempts": [every record, in order],
  "delivered": [the "body" of every record answered 2xx]} (empty lists for a
  name never posted to); ``GET /_mock/hooks`` -> {NAME: number of attempts}.
* ``POST /_mock/reset`` forgets every record (and so every fail= count).

Exchange rates (thread-safe)
----------------------------
The gateway's worker GETs an exchange-rate document from a configurable URL;
point it at ``http://127.0.0.1:PORT/_mock/rates``.

* ``GET /_mock/rates`` -> 200 {"result": "success", "base_code": "USD",
  "rates": {"USD": 1, "BRL": 5.25, "EUR": 0.92}} by default.
* ``POST /_mock/rates`` with a JSON object (any Content-Type) REPLACES the
  configuration (absent keys take their defaults) and answers {}.  Keys:
  ``status`` (int 200-599, default 200; a non-2xx answers {"error": "mock
  rates failure"} with that status), ``rates`` (object code -> number),
  ``base_code`` (string), ``base`` (string: the document then carries
  "base": VALUE instead of "base_code", as frankfurter.app does),
  ``malformed`` (bool: answer 200 with the truncated body ``{"rates": ``,
  whatever status says).  Unknown keys, wrong types, or a body that is not a
  JSON object are a 400 and change nothing.
* ``GET /_mock/rates/stats`` -> {"requests": number of GET /_mock/rates since
  the start or the last reset}.
* ``POST /_mock/reset`` restores the default document and zeroes the count.

Statistics (thread-safe)
------------------------
``/_mock/*`` requests are never counted.  ``in_flight`` is the number of
provider requests being answered right now, ``max_in_flight`` the most at
any moment since the start or the last reset.  A TCP connection is counted in
``connections`` when its first provider (non-/_mock) request arrives, and is
in ``open_connections`` while it stays open after that.  ``requests`` counts
provider requests (including rejected ones and unknown paths).
``last_request`` = {"method", "path", "query" (raw), "headers" (lower-case
names; values of authorization / api-key / x-api-key / x-goog-api-key replaced
by "<valid>" or "<invalid>"), "body" (parsed JSON, else raw text)}.
After a reset, a connection that was already open is counted again (and its
per-connection request count restarts) when it carries its next provider
request.  Connection ids (1, 2, 3, ... in accept order) and response ids are
unique for the life of the process and are not reset.

Default answer
--------------
U = text of the LAST user message (gemini: last contents item with role
"user") with directives removed and whitespace trimmed; answer =
``"mock answer: " + U[:200]``.  If max tokens was requested (max_tokens /
max_completion_tokens / maxOutputTokens) and tokens(answer) exceeds it, the
answer is cut to max*4 characters and the finish reason becomes
length / max_tokens / MAX_TOKENS (else stop / end_turn / STOP).

tokens(s) = ceil(len(s)/4) (0 for "").  prompt tokens = sum over every message
of tokens(text) + 4, where a top-level system text (anthropic ``system``,
gemini ``systemInstruction``) counts as one message.  completion tokens =
tokens(answer).

Anthropic answers are split into TWO text blocks and Gemini answers into TWO
parts (first half, second half): a client must concatenate them.

Usage reporting (P = prompt, C = completion, N = cached, W = cache_write,
R = reasoning):
  openai/azure: prompt_tokens = max(P, N) (includes cached), completion_tokens
                = C + R, total_tokens, prompt_tokens_details.cached_tokens = N,
                completion_tokens_details.reasoning_tokens = R  (W ignored)
  anthropic:    input_tokens = P, cache_read_input_tokens = N,
                cache_creation_input_tokens = W (additive), output_tokens = C + R
  gemini:       promptTokenCount = max(P, N) (includes cached),
                candidatesTokenCount = C, thoughtsTokenCount = R (only if > 0),
                cachedContentTokenCount = N (only if > 0),
                totalTokenCount = prompt + C + R  (W ignored)

Ids: "chatcmpl-mock-<n>", "msg_mock_<n>", gemini responseId "mock-<n>"; every
response carries ``x-request-id: req_mock_<n>``.

Directives
----------
Besides the message, directives may be written as path segments of the
base URL (``http://127.0.0.1:PORT/mock:status=500/v1``): they then apply to
every request through it, which makes one configured provider fail or slow
down while another pointing at the same mock does not.  Message directives
override path ones.

Written anywhere in the text of the LAST user message as ``[[mock:NAME]]`` or
``[[mock:NAME=VALUE]]`` (VALUE runs until the first ``]]``); several may be
combined; the last occurrence of a name wins.  An unknown NAME is a 400
"unknown mock directive NAME"; a bad value is a 400 too.

  status=CODE      respond with HTTP CODE (400-599) and the provider's error
                   body, message "mock error CODE".  Defaults: openai type
                   invalid_request_error (4xx) / "requests" + code
                   rate_limit_exceeded (429) / server_error (5xx); anthropic
                   type 400 invalid_request_error, 401 authentication_error,
                   403 permission_error, 404 not_found_error, 413
                   request_too_large, 429 rate_limit_error, 500 api_error, 529
                   overloaded_error, other api_error; gemini status 400
                   INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
                   404 NOT_FOUND, 429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503
                   UNAVAILABLE, 504 DEADLINE_EXCEEDED, other UNKNOWN.
                   429/503/529 send ``retry-after`` (default 1).
  code=TEXT        openai error code / anthropic error type / gemini status.
  message=TEXT     error message text; ``{key}`` in it is replaced by the
                   credential the request carried (the value of its auth
                   header, as a careless provider would quote it back).
  retry_after=N    retry-after seconds (also sent on any error status if given).
  slow_ms=N        wait N ms before answering (in 50 ms slices; if the client
                   disconnects meanwhile the request is dropped silently).
  malformed        200, truncated JSON body.
  wrong_shape      200, valid JSON without the expected fields
                   ({"object":"list","data":[]}).
  html             HTML error page with Content-Type text/html (status 502,
                   or the one given by status=).
  empty            200 (or status=) with Content-Length: 0.
  text_plain       normal body with Content-Type text/plain.
  close            close the TCP connection without sending anything.
  close_mid        status line + headers (full Content-Length) + half the
                   body, then close.
  trickle_ms=N     headers, then the body one byte every N ms.
  oversize=BYTES   normal 200 whose answer is padded with "x" until the body
                   is at least BYTES bytes (padding is not truncated).
  chunked          body sent with Transfer-Encoding: chunked (several chunks).
  gzip             body gzip-compressed, Content-Encoding: gzip (always).
  redirect=URL     307 with Location: URL.
  cached=N         N cache-read tokens (see usage above).
  cache_write=N    N cache-write tokens.
  reasoning=N      N reasoning / thinking tokens.
  usage=P,C        report exactly P prompt and C completion tokens (cached /
                   reasoning rules still apply on top).
  no_usage         omit usage / usageMetadata.
  null_content     openai content null + refusal "mock refusal"; anthropic
                   empty content list; gemini candidate without content,
                   finishReason SAFETY.  Completion tokens 0.
  finish=VALUE     override finish_reason / stop_reason / finishReason.
  reply=TEXT       the answer is exactly TEXT (still cut by max tokens).
  echo             the answer is compact JSON (sort_keys, no spaces) of
                   {"method","path","query","headers","body"}; headers are
                   content-type, accept, anthropic-version, user-agent,
                   x-custom-*, and the auth headers as "<valid>"/"<invalid>".
                   Never cut by max tokens; finish "stop".
  conn             the answer is compact JSON {"connection_id": id,
                   "requests_on_connection": n}; never cut by max tokens.

Answer precedence: echo > conn > null_content > reply > default.
Body precedence: close > redirect > html > malformed > wrong_shape > empty >
status error body > success body; then text_plain, gzip, and one delivery
mode: close_mid > trickle_ms > chunked > normal.

Mock limitations (400 with a message saying so): streaming, n / candidateCount
other than 1, non-text content parts / blocks.

Strictness notes
----------------
* openai: null optional fields are treated as absent (as OpenAI does);
  max_tokens together with max_completion_tokens is a 400; stream_options
  without stream is a 400; tool_choice needs tools; response_format
  json_object needs the word "json" in the messages.
* azure: a request carrying an Authorization header is a 401 even if api-key
  is valid (the key must travel only in api-key).
* anthropic: only 2023-06-01 is accepted; null values are type errors; text
  blocks may carry cache_control {"type": "ephemeral"}; thinking budget rules
  (>= 1024, < max_tokens, temperature 1) are enforced.
* gemini: like the real proto JSON parser, snake_case spellings
  (system_instruction, generation_config, max_output_tokens, ...) are accepted
  and null means "not set"; every contents item must carry role user|model;
  empty text parts are rejected; at most 5 stopSequences.
* Idle keep-alive connections are closed after 300 s.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import math
import os
import re
import select
import signal
import socket
import ssl
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

DEFAULT_API_KEY = "sk-mock-0123456789abcdef"
MAX_BODY_BYTES = 64 * 1024 * 1024
IDLE_TIMEOUT_S = 300
SLICE_S = 0.05
AUTH_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")
ECHO_HEADERS = ("content-type", "accept", "anthropic-version", "user-agent")
DISCONNECT_ERRORS = (ConnectionError, TimeoutError, socket.timeout)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def count_tokens(text: str) -> int:
    """Mock tokenizer: ceil(len/4), 0 for the empty string."""
    return math.ceil(len(text) / 4)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def to_json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def auth_header_valid(name: str, value: str, api_key: str) -> bool:
    if name == "authorization":
        scheme, _, token = value.strip().partition(" ")
        return scheme.lower() == "bearer" and token.strip() == api_key
    return value == api_key


def mask_headers(headers: dict[str, str], api_key: str, only: Callable[[str], bool] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name in AUTH_HEADERS:
            out[name] = "<valid>" if auth_header_valid(name, value, api_key) else "<invalid>"
        elif only is None or only(name):
            out[name] = value
    return out


def split_in_two(text: str) -> list[str]:
    """First half / second half; a single piece if too short to split."""
    if len(text) < 2:
        return [text]
    mid = len(text) // 2
    return [text[:mid], text[mid:]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


# --------------------------------------------------------------------------
# Errors, requests, replies
# --------------------------------------------------------------------------

class ApiError(Exception):
    """An error response, rendered in the shape of the provider that raised it.

    kind:  openai error "type" / anthropic error "type" / gemini "status"
           (default derived from the HTTP status).
    code:  openai error "code".
    raw:   a complete body sent verbatim (Azure's own error shapes).
    """

    def __init__(self, status: int, message: str = "", *, param: str | None = None,
                 code: str | None = None, kind: str | None = None,
                 raw: dict[str, Any] | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind
        self.raw = raw
        self.retry_after = retry_after


@dataclass
class RequestContext:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_body: bytes
    api_key: str
    seq: int = 0
    conn_id: int = 0
    conn_requests: int = 0
    path_params: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def parsed_or_text_body(self) -> Any:
        try:
            return parse_json(self.raw_body)
        except ValueError:
            return self.raw_body.decode("utf-8", "replace")

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query,
                "headers": mask_headers(self.headers, self.api_key),
                "body": self.parsed_or_text_body()}


@dataclass
class Conversation:
    """What a validated request means, independent of the protocol."""
    model: str
    message_texts: list[str]
    last_user_text: str
    max_tokens: int | None

    @property
    def prompt_tokens(self) -> int:
        return sum(count_tokens(t) + 4 for t in self.message_texts)


@dataclass
class Usage:
    prompt: int
    completion: int
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass
class Completion:
    seq: int
    model: str
    answer: str | None
    finish: str            # the protocol's own value, already mapped
    usage: Usage | None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delivery: str = "normal"        # normal | close | close_mid | trickle | chunked
    trickle_ms: int = 0
    delay_ms: int = 0
    close_after: bool = False


# --------------------------------------------------------------------------
# Directives
# --------------------------------------------------------------------------

DIRECTIVE_RE = re.compile(r"\[\[mock:([^\]=]*)(?:=(.*?))?\]\]", re.S)
FLAG_DIRECTIVES = frozenset({
    "malformed", "wrong_shape", "html", "empty", "text_plain", "close", "close_mid",
    "chunked", "gzip", "no_usage", "null_content", "echo", "conn"})
INT_DIRECTIVES: dict[str, tuple[int, int]] = {
    "status": (400, 599), "retry_after": (0, 86400), "slow_ms": (0, 3_600_000),
    "trickle_ms": (0, 60_000), "oversize": (0, 512 * 1024 * 1024), "cached": (0, 10**9),
    "cache_write": (0, 10**9), "reasoning": (0, 10**9)}
TEXT_DIRECTIVES = frozenset({"code", "message", "finish", "reply", "redirect", "usage"})
EMPTY_TEXT_OK = frozenset({"message", "reply"})


class DirectiveError(Exception):
    pass


@dataclass
class Directives:
    flags: set[str] = field(default_factory=set)
    ints: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] | None = None

    def has(self, flag: str) -> bool:
        return flag in self.flags

    def int(self, name: str, default: int | None = None) -> int | None:
        return self.ints.get(name, default)

    def text(self, name: str) -> str | None:
        return self.texts.get(name)


def parse_directives(text: str) -> tuple[Directives, str]:
    """Return the directives in ``text`` and the text with them removed."""
    found = Directives()
    for match in DIRECTIVE_RE.finditer(text):
        name, value = match.group(1), match.group(2)
        _apply_directive(found, name, value)
    return found, DIRECTIVE_RE.sub("", text).strip()


def _apply_directive(found: Directives, name: str, value: str | None) -> None:
    if name in FLAG_DIRECTIVES:
        if value is not None:
            raise DirectiveError(f"mock directive {name} takes no value")
        found.flags.add(name)
        return
    if name not in INT_DIRECTIVES and name not in TEXT_DIRECTIVES:
        raise DirectiveError(f"unknown mock directive {name}")
    if value is None:
        raise DirectiveError(f"mock directive {name} requires a value ([[mock:{name}=...]])")
    if name in INT_DIRECTIVES:
        lo, hi = INT_DIRECTIVES[name]
        if not re.fullmatch(r"\d+", value.strip()) or not lo <= int(value) <= hi:
            raise DirectiveError(f"invalid value for mock directive {name}: {value!r} (expected an integer {lo}..{hi})")
        found.ints[name] = int(value)
    elif name == "usage":
        m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", value)
        if not m:
            raise DirectiveError(f"invalid value for mock directive usage: {value!r} (expected P,C)")
        found.usage = (int(m.group(1)), int(m.group(2)))
    else:
        if value == "" and name not in EMPTY_TEXT_OK:
            raise DirectiveError(f"mock directive {name} requires a non-empty value")
        found.texts[name] = value


# --------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------

class Protocol:
    """Base class: one provider wire protocol."""

    name = "base"
    pattern: re.Pattern[str]
    response_content_type = "application/json"
    invalid_json_message = "Invalid JSON body."
    finish_values = {"stop": "stop", "length": "length", "safety": "stop"}

    # -- request side ------------------------------------------------------
    def preflight(self, ctx: RequestContext) -> None:
        """URL and header checks (auth etc.) done before the body is read."""

    def validate(self, ctx: RequestContext, body: dict[str, Any]) -> Conversation:
        raise NotImplementedError

    def check_model(self, ctx: RequestContext, conv: Conversation) -> None:
        """404 for models / deployments whose name starts with "unknown"."""

    # -- response side -----------------------------------------------------
    def error_body(self, err: ApiError, seq: int) -> dict[str, Any]:
        raise NotImplementedError

    def directive_error(self, status: int, code: str | None, message: str) -> ApiError:
        return ApiError(status, message, kind=code)

    def success_body(self, comp: Completion) -> dict[str, Any]:
        raise NotImplementedError

    def malformed_body(self) -> bytes:
        raise NotImplementedError

    def extra_headers(self, seq: int, status: int) -> list[tuple[str, str]]:
        return []

    def method_not_allowed(self, method: str) -> ApiError:
        return ApiError(405, f"Method {method} not allowed; use POST.")


# ---- OpenAI ----------------------------------------------------------------

OPENAI_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
    "n", "stream", "presence_penalty", "frequency_penalty", "seed", "user", "response_format",
    "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
    "stream_options", "metadata", "store", "service_tier"})
OPENAI_ROLES = ("system", "user", "assistant", "developer", "tool")


def _oa_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _oa_type(name: str, expected: str, value: Any) -> ApiError:
    return ApiError(400, f"Invalid type for '{name}': expected {expected}, but got {_oa_kind(value)} instead.",
                    param=name, code="invalid_type")


def _oa_value(name: str, message: str) -> ApiError:
    return ApiError(400, f"Invalid value for '{name}': {message}", param=name, code="invalid_value")


def _oa_number(body: dict[str, Any], name: str, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    word = "integer" if integer else "decimal"
    if not (is_int(value) if integer else is_number(value)):
        raise _oa_type(name, f"an {word}" if integer else "a decimal", value)
    if value < lo:
        raise ApiError(400, f"Invalid '{name}': {word} below minimum value. Expected a value >= {lo}, "
                       f"but got {value} instead.", param=name, code=f"{word}_below_min_value")
    if value > hi:
        raise ApiError(400, f"Invalid '{name}': {word} above maximum value. Expected a value <= {hi}, "
                       f"but got {value} instead.", param=name, code=f"{word}_above_max_value")
    return value


def _oa_typed(body: dict[str, Any], name: str, kind: type | tuple[type, ...], expected: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _oa_type(name, expected, value)
    return value


def _oa_content_text(content: Any, where: str, allow_null: bool) -> str:
    """Text of an OpenAI message content (string or array of text parts)."""
    if content is None:
        if allow_null:
            return ""
        raise _oa_type(where, "one of a string or array of objects", content)
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _oa_type(where, "one of a string or array of objects", content)
    if not content:
        raise ApiError(400, f"Invalid '{where}': empty array. Expected an array with minimum length 1, "
                       "but got an empty array instead.", param=where, code="empty_array")
    texts = []
    for i, part in enumerate(content):
        pwhere = f"{where}[{i}]"
        if not isinstance(part, dict):
            raise _oa_type(pwhere, "an object", part)
        if part.get("type") != "text":
            raise _oa_value(f"{pwhere}.type", f"the mock provider supports only content parts of type 'text' "
                            f"(got {part.get('type')!r}).")
        extra = sorted(set(part) - {"type", "text"})
        if extra:
            raise ApiError(400, f"Additional properties are not allowed ('{extra[0]}' was unexpected) - "
                           f"'{pwhere}'", param=pwhere, code="invalid_value")
        if not isinstance(part.get("text"), str):
            raise _oa_type(f"{pwhere}.text", "a string", part.get("text"))
        texts.append(part["text"])
    return "".join(texts)


def _oa_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    messages = body.get("messages")
    if messages is None:
        raise ApiError(400, "Missing required parameter: 'messages'.", param="messages",
                       code="missing_required_parameter")
    if not isinstance(messages, list):
        raise _oa_type("messages", "an array", messages)
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                       "but got an empty array instead.", param="messages", code="empty_array")
    out = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _oa_type(where, "an object", msg)
        role = msg.get("role")
        if role is None:
            raise ApiError(400, f"Missing required parameter: '{where}.role'.", param=f"{where}.role",
                           code="missing_required_parameter")
        if role not in OPENAI_ROLES:
            raise ApiError(400, f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                           "'user', 'tool', and 'developer'.", param=f"{where}.role", code="invalid_value")
        allowed = {"role", "content", "name"}
        if role == "assistant":
            allowed.add("tool_calls")
        if role == "tool":
            allowed.add("tool_call_id")
        extra = sorted(set(msg) - allowed)
        if extra:
            raise ApiError(400, f"Additional properties are not allowed ('{extra[0]}' was unexpected) - "
                           f"'{where}'", param=f"{where}.{extra[0]}", code="invalid_value")
        if "name" in msg and not isinstance(msg["name"], str):
            raise _oa_type(f"{where}.name", "a string", msg["name"])
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            raise ApiError(400, f"Missing required parameter: '{where}.tool_call_id'.",
                           param=f"{where}.tool_call_id", code="missing_required_parameter")
        has_tool_calls = role == "assistant" and msg.get("tool_calls") is not None
        if has_tool_calls and not isinstance(msg["tool_calls"], list):
            raise _oa_type(f"{where}.tool_calls", "an array", msg["tool_calls"])
        if "content" not in msg and not has_tool_calls:
            raise ApiError(400, f"Missing required parameter: '{where}.content'.", param=f"{where}.content",
                           code="missing_required_parameter")
        out.append((role, _oa_content_text(msg.get("content"), f"{where}.content", has_tool_calls)))
    return out


class OpenAIProtocol(Protocol):
    name = "openai"
    pattern = re.compile(r"^(?P<prefix>.*)/v1/chat/completions$")
    invalid_json_message = ("We could not parse the JSON body of your request. (HINT: This likely means you "
                            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)")
    model_required = True

    def preflight(self, ctx: RequestContext) -> None:
        value = ctx.headers.get("authorization")
        if value is None:
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                           "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                           kind="invalid_request_error")
        if not auth_header_valid("authorization", value, ctx.api_key):
            raise ApiError(401, "Incorrect API key provided.", kind="invalid_request_error", code="invalid_api_key")

    def validate(self, ctx: RequestContext, body: dict[str, Any]) -> Conversation:
        for key in body:
            if key not in OPENAI_FIELDS:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}", param=key)
        model = self._model(body)
        messages = _oa_messages(body)
        max_tokens = self._validate_params(body, messages)
        last_user = next((text for role, text in reversed(messages) if role == "user"), "")
        return Conversation(model=model, message_texts=[t for _, t in messages],
                            last_user_text=last_user, max_tokens=max_tokens)

    def _model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if model is None or model == "":
            raise ApiError(400, "you must provide a model parameter", param="model",
                           code="missing_required_parameter")
        if not isinstance(model, str):
            raise _oa_type("model", "a string", model)
        return model

    def _validate_params(self, body: dict[str, Any], messages: list[tuple[str, str]]) -> int | None:
        _oa_number(body, "temperature", 0, 2)
        _oa_number(body, "top_p", 0, 1)
        _oa_number(body, "presence_penalty", -2, 2)
        _oa_number(body, "frequency_penalty", -2, 2)
        max_tokens = _oa_number(body, "max_tokens", 1, 10**9, integer=True)
        max_completion = _oa_number(body, "max_completion_tokens", 1, 10**9, integer=True)
        if max_tokens is not None and max_completion is not None:
            raise ApiError(400, "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not "
                           "supported.", param="max_tokens", code="invalid_value")
        self._validate_stop(body.get("stop"))
        n = _oa_number(body, "n", 1, 128, integer=True)
        if n is not None and n != 1:
            raise _oa_value("n", "the mock provider supports only n=1.")
        if _oa_typed(body, "stream", bool, "a boolean"):
            raise _oa_value("stream", "the mock provider does not support stream=true.")
        if body.get("stream_options") is not None:
            raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           param="stream_options", code="invalid_value")
        _oa_number(body, "seed", -(2**63), 2**63 - 1, integer=True)
        _oa_typed(body, "user", str, "a string")
        _oa_typed(body, "logit_bias", dict, "an object")
        for flag in ("logprobs", "parallel_tool_calls", "store"):
            _oa_typed(body, flag, bool, "a boolean")
        if _oa_number(body, "top_logprobs", 0, 20, integer=True) is not None and body.get("logprobs") is not True:
            raise _oa_value("top_logprobs", "'logprobs' must be set to true when 'top_logprobs' is used.")
        metadata = _oa_typed(body, "metadata", dict, "an object")
        for key, value in (metadata or {}).items():
            if not isinstance(value, str):
                raise _oa_type(f"metadata.{key}", "a string", value)
        tier = _oa_typed(body, "service_tier", str, "a string")
        if tier is not None and tier not in ("auto", "default", "flex", "scale", "priority"):
            raise _oa_value("service_tier", f"'{tier}' is not one of 'auto', 'default', 'flex', 'scale', 'priority'.")
        self._validate_response_format(body, messages)
        self._validate_tools(body)
        return max_tokens if max_tokens is not None else max_completion

    @staticmethod
    def _validate_stop(stop: Any) -> None:
        if stop is None or isinstance(stop, str):
            return
        if not isinstance(stop, list):
            raise _oa_type("stop", "one of a string or array of strings", stop)
        if len(stop) > 4:
            raise ApiError(400, f"Invalid 'stop': array too long. Expected an array with maximum length 4, "
                           f"but got an array with length {len(stop)} instead.", param="stop",
                           code="array_above_max_length")
        for i, item in enumerate(stop):
            if not isinstance(item, str):
                raise _oa_type(f"stop[{i}]", "a string", item)

    @staticmethod
    def _validate_response_format(body: dict[str, Any], messages: list[tuple[str, str]]) -> None:
        fmt = _oa_typed(body, "response_format", dict, "an object")
        if fmt is None:
            return
        kind = fmt.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            raise _oa_value("response_format.type", f"'{kind}' is not one of 'text', 'json_object', 'json_schema'.")
        if kind == "json_schema" and not isinstance(fmt.get("json_schema"), dict):
            raise ApiError(400, "Missing required parameter: 'response_format.json_schema'.",
                           param="response_format.json_schema", code="missing_required_parameter")
        if kind == "json_object" and not any("json" in t.lower() for _, t in messages):
            raise ApiError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' "
                           "of type 'json_object'.", param="messages", code=None)

    @staticmethod
    def _validate_tools(body: dict[str, Any]) -> None:
        tools = _oa_typed(body, "tools", list, "an array")
        for i, tool in enumerate(tools or []):
            if not isinstance(tool, dict) or tool.get("type") != "function" or \
                    not isinstance(tool.get("function"), dict) or not isinstance(tool["function"].get("name"), str):
                raise _oa_value(f"tools[{i}]", "expected {\"type\": \"function\", \"function\": {\"name\": ...}}.")
        choice = body.get("tool_choice")
        if choice is None:
            return
        if not isinstance(choice, (str, dict)):
            raise _oa_type("tool_choice", "one of a string or object", choice)
        if isinstance(choice, str) and choice not in ("none", "auto", "required"):
            raise _oa_value("tool_choice", f"'{choice}' is not one of 'none', 'auto', 'required'.")
        if not tools:
            raise _oa_value("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.")

    def check_model(self, ctx: RequestContext, conv: Conversation) -> None:
        if conv.model.startswith("unknown"):
            raise ApiError(404, f"The model `{conv.model}` does not exist or you do not have access to it.",
                           kind="invalid_request_error", code="model_not_found")

    @staticmethod
    def _type_for(status: int) -> str:
        if status == 429:
            return "requests"
        if status >= 500:
            return "server_error"
        return "invalid_request_error"

    @staticmethod
    def _code_for(status: int) -> str | None:
        return {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)

    def error_body(self, err: ApiError, seq: int) -> dict[str, Any]:
        return {"error": {"message": err.message, "type": err.kind or self._type_for(err.status),
                          "param": err.param, "code": err.code}}

    def directive_error(self, status: int, code: str | None, message: str) -> ApiError:
        return ApiError(status, message, code=code if code is not None else self._code_for(status))

    def success_body(self, comp: Completion) -> dict[str, Any]:
        if comp.answer is None:
            message = {"role": "assistant", "content": None, "refusal": "mock refusal", "annotations": []}
        else:
            message = {"role": "assistant", "content": comp.answer, "refusal": None, "annotations": []}
        body: dict[str, Any] = {
            "id": f"chatcmpl-mock-{comp.seq}", "object": "chat.completion", "created": int(time.time()),
            "model": comp.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": comp.finish}],
        }
        if comp.usage is not None:
            u = comp.usage
            prompt = max(u.prompt, u.cached)
            completion = u.completion + u.reasoning
            body["usage"] = {
                "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            }
        body["service_tier"] = "default"
        body["system_fingerprint"] = None
        return body

    def malformed_body(self) -> bytes:
        return b'{"id": "chatcmpl-broken", "choices": ['

    def extra_headers(self, seq: int, status: int) -> list[tuple[str, str]]:
        remaining = "0" if status == 429 else "999"
        return [("x-ratelimit-limit-requests", "1000"), ("x-ratelimit-remaining-requests", remaining)]


# ---- Azure OpenAI -----------------------------------------------------------

AZURE_AUTH_MESSAGE = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                      "valid key for an active subscription and use a correct regional API endpoint for your "
                      "resource.")


class AzureProtocol(OpenAIProtocol):
    name = "azure"
    pattern = re.compile(r"^(?P<prefix>.*)/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")

    def preflight(self, ctx: RequestContext) -> None:
        params = dict(parse_qsl(ctx.query, keep_blank_values=True))
        version = params.get("api-version")
        if not version:
            raise ApiError(404, raw={"error": {"code": "404", "message": "Resource not found"}})
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", version):
            raise ApiError(400, raw={"error": {"code": "BadRequest", "message": "API version not supported"}})
        key = ctx.headers.get("api-key")
        if "authorization" in ctx.headers or key is None or not auth_header_valid("api-key", key, ctx.api_key):
            raise ApiError(401, raw={"error": {"code": "401", "message": AZURE_AUTH_MESSAGE}})

    def _model(self, body: dict[str, Any]) -> str:
        return ""  # optional and ignored; the deployment decides

    def validate(self, ctx: RequestContext, body: dict[str, Any]) -> Conversation:
        conv = super().validate(ctx, body)
        conv.model = ctx.path_params["deployment"]
        return conv

    def check_model(self, ctx: RequestContext, conv: Conversation) -> None:
        if conv.model.startswith("unknown"):
            raise ApiError(404, raw={"error": {"code": "DeploymentNotFound", "message":
                                               "The API deployment for this resource does not exist. If you "
                                               "created the deployment within the last 5 minutes, please wait "
                                               "a moment and try again."}})

    def error_body(self, err: ApiError, seq: int) -> dict[str, Any]:
        return err.raw if err.raw is not None else super().error_body(err, seq)

    def success_body(self, comp: Completion) -> dict[str, Any]:
        body = super().success_body(comp)
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
        body["choices"][0]["content_filter_results"] = {}
        return body


# ---- Anthropic --------------------------------------------------------------

ANTHROPIC_FIELDS = frozenset({
    "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k", "stop_sequences",
    "metadata", "stream", "tools", "tool_choice", "thinking"})
ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                         500: "api_error", 529: "overloaded_error"}


def _an_error(message: str) -> ApiError:
    return ApiError(400, message)


def _an_number(body: dict[str, Any], name: str, lo: float, hi: float | None, integer: bool = False) -> Any:
    if name not in body:
        return None
    value = body[name]
    if not (is_int(value) if integer else is_number(value)):
        raise _an_error(f"{name}: Input should be a valid {'integer' if integer else 'number'}")
    if value < lo:
        raise _an_error(f"{name}: Input should be greater than or equal to {lo}")
    if hi is not None and value > hi:
        raise _an_error(f"{name}: Input should be less than or equal to {hi}")
    return value


def _an_text_blocks(blocks: list[Any], where: str) -> str:
    texts = []
    for i, block in enumerate(blocks):
        bwhere = f"{where}.{i}"
        if not isinstance(block, dict):
            raise _an_error(f"{bwhere}: Input should be a valid dictionary")
        if block.get("type") != "text":
            raise _an_error(f"{bwhere}.type: the mock provider supports only content blocks of type 'text' "
                            f"(got {block.get('type')!r})")
        for key in block:
            if key not in ("type", "text", "cache_control"):
                raise _an_error(f"{bwhere}.{key}: Extra inputs are not permitted")
        text = block.get("text")
        if not isinstance(text, str):
            raise _an_error(f"{bwhere}.text: Field required" if "text" not in block
                            else f"{bwhere}.text: Input should be a valid string")
        if not text:
            raise _an_error(f"{bwhere}.text: text content blocks must be non-empty")
        cache = block.get("cache_control")
        if cache is not None and (not isinstance(cache, dict) or cache.get("type") != "ephemeral"):
            raise _an_error(f"{bwhere}.cache_control.type: Input should be 'ephemeral'")
        texts.append(text)
    return "".join(texts)


def _an_content(content: Any, where: str) -> str:
    if isinstance(content, str):
        if not content:
            raise _an_error(f"{where}: text content must be non-empty")
        return content
    if not isinstance(content, list):
        raise _an_error(f"{where}: Input should be a valid string or a list of content blocks")
    if not content:
        raise _an_error(f"{where}: List should have at least 1 item after validation, not 0")
    return _an_text_blocks(content, where)


def _an_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    if "messages" not in body:
        raise _an_error("messages: Field required")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _an_error("messages: Input should be a valid list")
    if not messages:
        raise _an_error("messages: at least one message is required")
    out: list[tuple[str, str]] = []
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(msg, dict):
            raise _an_error(f"{where}: Input should be a valid dictionary")
        for key in msg:
            if key not in ("role", "content"):
                raise _an_error(f"{where}.{key}: Extra inputs are not permitted")
        role = msg.get("role")
        if role is None:
            raise _an_error(f"{where}.role: Field required")
        if role == "system":
            raise _an_error('messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                            'parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            raise _an_error(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in msg:
            raise _an_error(f"{where}.content: Field required")
        if i == 0 and role != "user":
            raise _an_error('messages: first message must use the "user" role')
        if out and out[-1][0] == role:
            raise _an_error(f'messages: roles must alternate between "user" and "assistant", but found multiple '
                            f'"{role}" roles in a row (messages.{i - 1} and messages.{i})')
        out.append((role, _an_content(msg["content"], f"{where}.content")))
    return out


class AnthropicProtocol(Protocol):
    name = "anthropic"
    pattern = re.compile(r"^(?P<prefix>.*)/v1/messages$")
    invalid_json_message = "There was an error parsing the body of your request: it is not valid JSON."
    finish_values = {"stop": "end_turn", "length": "max_tokens", "safety": "end_turn"}

    def preflight(self, ctx: RequestContext) -> None:
        key = ctx.headers.get("x-api-key")
        if key is None:
            raise ApiError(401, "x-api-key header is required")
        if not auth_header_valid("x-api-key", key, ctx.api_key):
            raise ApiError(401, "invalid x-api-key")
        version = ctx.headers.get("anthropic-version")
        if version is None:
            raise ApiError(400, "anthropic-version: header is required")
        if version != ANTHROPIC_VERSION:
            raise ApiError(400, f"anthropic-version: invalid version {version!r}; "
                           f"the mock accepts only {ANTHROPIC_VERSION}")

    def validate(self, ctx: RequestContext, body: dict[str, Any]) -> Conversation:
        for key in body:
            if key not in ANTHROPIC_FIELDS:
                raise _an_error(f"{key}: Extra inputs are not permitted")
        if "model" not in body:
            raise _an_error("model: Field required")
        model = body["model"]
        if not isinstance(model, str) or not model:
            raise _an_error("model: Input should be a valid non-empty string")
        if "max_tokens" not in body:
            raise _an_error("max_tokens: Field required")
        max_tokens = _an_number(body, "max_tokens", 1, None, integer=True)
        messages = _an_messages(body)
        system = self._system(body)
        self._validate_params(body, max_tokens)
        texts = ([system] if system else []) + [t for _, t in messages]
        last_user = next((text for role, text in reversed(messages) if role == "user"), "")
        return Conversation(model=model, message_texts=texts, last_user_text=last_user, max_tokens=max_tokens)

    @staticmethod
    def _system(body: dict[str, Any]) -> str:
        if "system" not in body:
            return ""
        system = body["system"]
        if isinstance(system, str):
            return system
        if not isinstance(system, list):
            raise _an_error("system: Input should be a valid string or a list of text blocks")
        return _an_text_blocks(system, "system")

    @staticmethod
    def _validate_params(body: dict[str, Any], max_tokens: int) -> None:
        temperature = _an_number(body, "temperature", 0, 1)
        _an_number(body, "top_p", 0, 1)
        _an_number(body, "top_k", 0, None, integer=True)
        if "stop_sequences" in body:
            stops = body["stop_sequences"]
            if not isinstance(stops, list):
                raise _an_error("stop_sequences: Input should be a valid list")
            for i, stop in enumerate(stops):
                if not isinstance(stop, str):
                    raise _an_error(f"stop_sequences.{i}: Input should be a valid string")
                if not stop.strip():
                    raise _an_error("stop_sequences: each stop sequence must contain non-whitespace")
        if "stream" in body:
            if not isinstance(body["stream"], bool):
                raise _an_error("stream: Input should be a valid boolean")
            if body["stream"]:
                raise _an_error("stream: the mock provider does not support streaming")
        if "metadata" in body:
            metadata = body["metadata"]
            if not isinstance(metadata, dict):
                raise _an_error("metadata: Input should be a valid dictionary")
            for key, value in metadata.items():
                if key != "user_id":
                    raise _an_error(f"metadata.{key}: Extra inputs are not permitted")
                if value is not None and not isinstance(value, str):
                    raise _an_error("metadata.user_id: Input should be a valid string")
        if "tools" in body and not isinstance(body["tools"], list):
            raise _an_error("tools: Input should be a valid list")
        if "tool_choice" in body:
            choice = body["tool_choice"]
            if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
                raise _an_error("tool_choice: Input should be an object with type 'auto', 'any', 'tool' or 'none'")
        if "thinking" in body:
            AnthropicProtocol._validate_thinking(body["thinking"], max_tokens, temperature)

    @staticmethod
    def _validate_thinking(thinking: Any, max_tokens: int, temperature: Any) -> None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
            raise _an_error("thinking: Input should be {\"type\": \"enabled\", \"budget_tokens\": N} "
                            "or {\"type\": \"disabled\"}")
        if thinking["type"] == "disabled":
            return
        budget = thinking.get("budget_tokens")
        if not is_int(budget):
            raise _an_error("thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            raise _an_error("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if max_tokens <= budget:
            raise _an_error("`max_tokens` must be greater than `thinking.budget_tokens`")
        if temperature is not None and temperature != 1:
            raise _an_error("`temperature` may only be set to 1 when thinking is enabled")

    def check_model(self, ctx: RequestContext, conv: Conversation) -> None:
        if conv.model.startswith("unknown"):
            raise ApiError(404, f"model: {conv.model}", kind="not_found_error")

    def error_body(self, err: ApiError, seq: int) -> dict[str, Any]:
        kind = err.kind or ANTHROPIC_ERROR_TYPES.get(err.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": err.message},
                "request_id": f"req_mock_{seq}"}

    def success_body(self, comp: Completion) -> dict[str, Any]:
        content = [] if comp.answer is None else [{"type": "text", "text": part}
                                                   for part in split_in_two(comp.answer)]
        body: dict[str, Any] = {
            "id": f"msg_mock_{comp.seq}", "type": "message", "role": "assistant", "model": comp.model,
            "content": content, "stop_reason": comp.finish, "stop_sequence": None,
        }
        if comp.usage is not None:
            u = comp.usage
            body["usage"] = {"input_tokens": u.prompt, "cache_creation_input_tokens": u.cache_write,
                             "cache_read_input_tokens": u.cached, "output_tokens": u.completion + u.reasoning,
                             "service_tier": "standard"}
        return body

    def malformed_body(self) -> bytes:
        return b'{"id": "msg_broken", "type": "message", "content": ['

    def extra_headers(self, seq: int, status: int) -> list[tuple[str, str]]:
        return [("request-id", f"req_mock_{seq}")]


# ---- Google Gemini ----------------------------------------------------------

def _camel_to_snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def _aliases(names: list[str]) -> dict[str, str]:
    """Proto JSON accepts lowerCamel and snake_case names: map both to camel."""
    table = {n: n for n in names}
    table.update({_camel_to_snake(n): n for n in names})
    return table


GEMINI_FIELDS = _aliases(["contents", "systemInstruction", "generationConfig", "safetySettings", "tools",
                          "toolConfig", "cachedContent"])
GEMINI_GENERATION_FIELDS = _aliases(["temperature", "maxOutputTokens", "topP", "topK", "stopSequences",
                                     "candidateCount", "responseMimeType", "thinkingConfig", "presencePenalty",
                                     "frequencyPenalty", "seed"])
GEMINI_NON_TEXT_PARTS = frozenset(_aliases(["inlineData", "fileData", "functionCall", "functionResponse",
                                            "executableCode", "codeExecutionResult", "thought",
                                            "thoughtSignature", "videoMetadata"]))
GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
GEMINI_MIME_TYPES = ("text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum")


def _gm_error(message: str) -> ApiError:
    return ApiError(400, message)


def _gm_unknown(name: str, where: str | None = None) -> ApiError:
    at = f" at '{where}'" if where else ""
    return _gm_error(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def _gm_canonical(obj: dict[str, Any], table: dict[str, str], where: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        canon = table.get(key)
        if canon is None:
            raise _gm_unknown(key, where)
        if canon in out:
            raise _gm_error(f"Invalid JSON payload received. Duplicate field \"{key}\""
                            + (f" at '{where}'" if where else "") + ".")
        if value is not None:               # proto JSON: null means "not set"
            out[canon] = value
    return out


def _gm_number(obj: dict[str, Any], name: str, where: str, lo: float | None, hi: float | None,
               integer: bool = False) -> Any:
    if name not in obj:
        return None
    value = obj[name]
    proto_type = "TYPE_INT32" if integer else "TYPE_FLOAT"
    if not (is_int(value) if integer else is_number(value)):
        raise _gm_error(f"Invalid value at '{where}.{name}' ({proto_type}), {json.dumps(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise _gm_error(f"* GenerateContentRequest.{where}.{name}: {name} must be in the range {bounds}, "
                        f"got {value}")
    return value


def _gm_parts(parts: Any, where: str) -> str:
    if not isinstance(parts, list):
        raise _gm_error(f"Invalid value at '{where}.parts' (type.googleapis.com/google.ai.generativelanguage."
                        f"v1beta.Part), {json.dumps(parts)}")
    if not parts:
        raise _gm_error(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
    texts = []
    for i, part in enumerate(parts):
        pwhere = f"{where}.parts[{i}]"
        if not isinstance(part, dict):
            raise _gm_error(f"Invalid value at '{pwhere}' (type.googleapis.com/google.ai.generativelanguage."
                            f"v1beta.Part), {json.dumps(part)}")
        for key in part:
            if key in GEMINI_NON_TEXT_PARTS:
                raise _gm_error(f"{pwhere}.{key}: the mock provider supports only text parts")
            if key != "text":
                raise _gm_unknown(key, pwhere)
        text = part.get("text")
        if not isinstance(text, str):
            raise _gm_error(f"Invalid value at '{pwhere}.text' (TYPE_STRING), {json.dumps(text)}")
        if not text:
            raise _gm_error("Unable to submit request because it has an empty text parameter. Add a value to "
                            f"the parameter and try again. ({pwhere}.text)")
        texts.append(text)
    return "".join(texts)


def _gm_contents(body: dict[str, Any]) -> list[tuple[str, str]]:
    contents = body.get("contents")
    if contents is None:
        raise _gm_error("* GenerateContentRequest.contents: contents is not specified")
    if not isinstance(contents, list):
        raise _gm_error(f"Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage."
                        f"v1beta.Content), {json.dumps(contents)}")
    if not contents:
        raise _gm_error("* GenerateContentRequest.contents: contents is not specified")
    out = []
    for i, item in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(item, dict):
            raise _gm_error(f"Invalid value at '{where}' (type.googleapis.com/google.ai.generativelanguage."
                            f"v1beta.Content), {json.dumps(item)}")
        for key in item:
            if key not in ("role", "parts"):
                raise _gm_unknown(key, where)
        role = item.get("role")
        if role not in ("user", "model"):
            raise _gm_error(f"Please use a valid role: user, model. ({where}.role: {json.dumps(role)})")
        out.append((role, _gm_parts(item.get("parts"), where)))
    return out


def _gm_system(body: dict[str, Any]) -> str | None:
    system = body.get("systemInstruction")
    if system is None:
        return None
    if not isinstance(system, dict):
        raise _gm_error(f"Invalid value at 'system_instruction' (type.googleapis.com/google.ai."
                        f"generativelanguage.v1beta.Content), {json.dumps(system)}")
    for key in system:
        if key not in ("role", "parts"):
            raise _gm_unknown(key, "system_instruction")
    if "role" in system and not isinstance(system["role"], str):
        raise _gm_error("Invalid value at 'system_instruction.role' (TYPE_STRING)")
    return _gm_parts(system.get("parts"), "system_instruction")


def _gm_generation_config(body: dict[str, Any]) -> int | None:
    config = body.get("generationConfig")
    if config is None:
        return None
    where = "generation_config"
    if not isinstance(config, dict):
        raise _gm_error(f"Invalid value at '{where}' (type.googleapis.com/google.ai.generativelanguage."
                        f"v1beta.GenerationConfig), {json.dumps(config)}")
    config = _gm_canonical(config, GEMINI_GENERATION_FIELDS, where)
    _gm_number(config, "temperature", where, 0, 2)
    _gm_number(config, "topP", where, 0, 1)
    _gm_number(config, "topK", where, 1, None, integer=True)
    _gm_number(config, "presencePenalty", where, None, None)
    _gm_number(config, "frequencyPenalty", where, None, None)
    _gm_number(config, "seed", where, None, None, integer=True)
    max_tokens = _gm_number(config, "maxOutputTokens", where, 1, None, integer=True)
    count = _gm_number(config, "candidateCount", where, 1, 8, integer=True)
    if count is not None and count != 1:
        raise _gm_error(f"{where}.candidateCount: the mock provider supports only candidateCount=1")
    stops = config.get("stopSequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _gm_error(f"Invalid value at '{where}.stop_sequences' (TYPE_STRING), {json.dumps(stops)}")
        if len(stops) > 5:
            raise _gm_error(f"* GenerateContentRequest.{where}.stop_sequences: at most 5 stop sequences are "
                            f"allowed, got {len(stops)}")
    mime = config.get("responseMimeType")
    if mime is not None and mime not in GEMINI_MIME_TYPES:
        raise _gm_error(f"* GenerateContentRequest.{where}.response_mime_type: allowed mimetypes are "
                        f"{', '.join(GEMINI_MIME_TYPES)}; got {json.dumps(mime)}")
    thinking = config.get("thinkingConfig")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _gm_error(f"Invalid value at '{where}.thinking_config', {json.dumps(thinking)}")
        thinking = _gm_canonical(thinking, _aliases(["thinkingBudget", "includeThoughts", "thinkingLevel"]),
                                 f"{where}.thinking_config")
        _gm_number(thinking, "thinkingBudget", f"{where}.thinking_config", -1, None, integer=True)
    return max_tokens


class GeminiProtocol(Protocol):
    name = "gemini"
    pattern = re.compile(r"^(?P<prefix>.*)/v1beta/models/(?P<model>[^/:]+):generateContent$")
    response_content_type = "application/json; charset=UTF-8"
    invalid_json_message = "Invalid JSON payload received."
    finish_values = {"stop": "STOP", "length": "MAX_TOKENS", "safety": "SAFETY"}

    def preflight(self, ctx: RequestContext) -> None:
        if any(name.lower() == "key" for name, _ in parse_qsl(ctx.query, keep_blank_values=True)):
            raise ApiError(400, "API key must not be sent in the URL (use the x-goog-api-key header)")
        key = ctx.headers.get("x-goog-api-key")
        if key is None:
            raise ApiError(401, "Method doesn't allow unregistered callers (callers without established "
                           "identity). Please use API Key or other form of API consumer identity to call this API.")
        if not auth_header_valid("x-goog-api-key", key, ctx.api_key):
            raise ApiError(401, "API key not valid. Please pass a valid API key.")

    def validate(self, ctx: RequestContext, body: dict[str, Any]) -> Conversation:
        body = _gm_canonical(body, GEMINI_FIELDS, None)
        contents = _gm_contents(body)
        system = _gm_system(body)
        max_tokens = _gm_generation_config(body)
        for name, kind, label in (("safetySettings", list, "list"), ("tools", list, "list"),
                                  ("toolConfig", dict, "object"), ("cachedContent", str, "string")):
            if name in body and not isinstance(body[name], kind):
                raise _gm_error(f"Invalid value at '{_camel_to_snake(name)}': expected a {label}")
        texts = ([system] if system is not None else []) + [t for _, t in contents]
        last_user = next((text for role, text in reversed(contents) if role == "user"), "")
        return Conversation(model=ctx.path_params["model"], message_texts=texts,
                            last_user_text=last_user, max_tokens=max_tokens)

    def check_model(self, ctx: RequestContext, conv: Conversation) -> None:
        if conv.model.startswith("unknown"):
            raise ApiError(404, f"models/{conv.model} is not found for API version v1beta, or is not supported "
                           "for generateContent. Call ListModels to see the list of available models and their "
                           "supported methods.")

    def error_body(self, err: ApiError, seq: int) -> dict[str, Any]:
        error: dict[str, Any] = {"code": err.status, "message": err.message,
                                 "status": err.kind or GEMINI_STATUS.get(err.status, "UNKNOWN")}
        if err.status == 429:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": f"{err.retry_after if err.retry_after is not None else 1}s"}]
        return {"error": error}

    def success_body(self, comp: Completion) -> dict[str, Any]:
        candidate: dict[str, Any]
        if comp.answer is None:
            candidate = {"finishReason": comp.finish, "index": 0,
                         "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                            "probability": "HIGH", "blocked": True}]}
        else:
            candidate = {"content": {"parts": [{"text": p} for p in split_in_two(comp.answer)], "role": "model"},
                         "finishReason": comp.finish, "index": 0}
        body: dict[str, Any] = {"candidates": [candidate]}
        if comp.usage is not None:
            u = comp.usage
            prompt = max(u.prompt, u.cached)
            meta: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": u.completion,
                                    "totalTokenCount": prompt + u.completion + u.reasoning}
            if u.cached > 0:
                meta["cachedContentTokenCount"] = u.cached
            if u.reasoning > 0:
                meta["thoughtsTokenCount"] = u.reasoning
            meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
            body["usageMetadata"] = meta
        body["modelVersion"] = comp.model
        body["responseId"] = f"mock-{comp.seq}"
        return body

    def malformed_body(self) -> bytes:
        return b'{"candidates": [{"content": {"parts": ['

    def method_not_allowed(self, method: str) -> ApiError:
        return ApiError(405, f"Method {method} not allowed; use POST.", kind="INVALID_ARGUMENT")


# Dispatch table: first matching path pattern wins (Azure before OpenAI).
PROTOCOLS: tuple[Protocol, ...] = (AzureProtocol(), OpenAIProtocol(), AnthropicProtocol(), GeminiProtocol())


def match_route(path: str) -> tuple[Protocol, dict[str, str]] | None:
    for proto in PROTOCOLS:
        m = proto.pattern.match(path)
        if m:
            return proto, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


# --------------------------------------------------------------------------
# Building replies
# --------------------------------------------------------------------------

HTML_PAGE = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>mock-nginx</center>\r\n"
             b"</body>\r\n</html>\r\n")


def json_reply(status: int, value: Any, **kwargs: Any) -> Reply:
    return Reply(status, to_json_bytes(value), **kwargs)


def not_found_reply(ctx: RequestContext) -> Reply:
    return json_reply(404, {"error": {"message": f"Invalid URL ({ctx.method} {ctx.path})",
                                      "type": "invalid_request_error", "param": None, "code": None}})


def error_reply(proto: Protocol, err: ApiError, seq: int) -> Reply:
    headers = [("x-request-id", f"req_mock_{seq}")] + proto.extra_headers(seq, err.status)
    if err.retry_after is not None:
        headers.append(("retry-after", str(err.retry_after)))
    if err.status == 405:
        headers.append(("Allow", "POST"))
    return Reply(err.status, to_json_bytes(proto.error_body(err, seq)), proto.response_content_type, headers)


def parse_json_object(proto: Protocol, ctx: RequestContext) -> dict[str, Any]:
    content_type = ctx.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(400, f"Content-Type must be application/json (got {content_type or 'none'!r})")
    try:
        body = parse_json(ctx.raw_body)
    except ValueError as exc:
        raise ApiError(400, f"{proto.invalid_json_message} ({exc})") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def echo_answer(ctx: RequestContext) -> str:
    def wanted(name: str) -> bool:
        return name in ECHO_HEADERS or name.startswith("x-custom-")
    return compact_json({"method": ctx.method, "path": ctx.path, "query": ctx.query,
                         "headers": mask_headers(ctx.headers, ctx.api_key, wanted), "body": ctx.body})


def choose_answer(ctx: RequestContext, conv: Conversation, d: Directives, user_text: str) -> tuple[str | None, str]:
    """Return (answer, generic finish kind: stop | length | safety)."""
    if d.has("echo"):
        return echo_answer(ctx), "stop"
    if d.has("conn"):
        return compact_json({"connection_id": ctx.conn_id, "requests_on_connection": ctx.conn_requests}), "stop"
    if d.has("null_content"):
        return None, "safety"
    answer = d.text("reply")
    if answer is None:
        answer = "mock answer: " + user_text[:200]
    if conv.max_tokens is not None and count_tokens(answer) > conv.max_tokens:
        return answer[: conv.max_tokens * 4], "length"
    return answer, "stop"


def success_json(proto: Protocol, ctx: RequestContext, conv: Conversation, d: Directives, user_text: str) -> bytes:
    answer, finish_kind = choose_answer(ctx, conv, d, user_text)
    finish = d.text("finish") or proto.finish_values[finish_kind]

    def render(text: str | None) -> bytes:
        usage = None
        if not d.has("no_usage"):
            prompt, completion = d.usage if d.usage else (conv.prompt_tokens, count_tokens(text or ""))
            usage = Usage(prompt, completion, d.int("cached", 0) or 0, d.int("cache_write", 0) or 0,
                          d.int("reasoning", 0) or 0)
        return to_json_bytes(proto.success_body(Completion(ctx.seq, conv.model, text, finish, usage)))

    body = render(answer)
    target = d.int("oversize")
    while target is not None and answer is not None and len(body) < target:
        answer += "x" * (target - len(body))
        body = render(answer)
    return body


def build_reply(proto: Protocol, ctx: RequestContext, conv: Conversation, d: Directives, user_text: str) -> Reply:
    """Turn a validated request plus its directives into a Reply."""
    if d.has("close"):
        return Reply(0, delivery="close", delay_ms=d.int("slow_ms", 0) or 0)
    headers = [("x-request-id", f"req_mock_{ctx.seq}")]
    status = d.int("status") or 200
    content_type: str | None = proto.response_content_type
    redirect = d.text("redirect")
    if redirect is not None:
        status, body = 307, to_json_bytes({"redirect": redirect})
        headers.append(("Location", redirect))
    elif d.has("html"):
        status = d.int("status") or 502
        body, content_type = HTML_PAGE, "text/html; charset=utf-8"
    elif d.has("malformed"):
        body = proto.malformed_body()
    elif d.has("wrong_shape"):
        body = b'{"object":"list","data":[]}'
    elif d.has("empty"):
        body = b""
    elif status >= 400:
        message = d.text("message")
        if message is not None and "{key}" in message:
            sent = next((ctx.headers[h] for h in AUTH_HEADERS if h in ctx.headers), "")
            message = message.replace("{key}", sent)
        err = proto.directive_error(status, d.text("code"), message if message is not None else f"mock error {status}")
        err.retry_after = d.int("retry_after")
        body = to_json_bytes(proto.error_body(err, ctx.seq))
    else:
        body = success_json(proto, ctx, conv, d, user_text)
    headers += proto.extra_headers(ctx.seq, status)
    if status >= 400 and (status in (429, 503, 529) or d.int("retry_after") is not None):
        headers.append(("retry-after", str(d.int("retry_after", 1))))
    if d.has("text_plain"):
        content_type = "text/plain; charset=utf-8"
    if d.has("gzip"):
        body = gzip.compress(body, mtime=0)
        headers.append(("Content-Encoding", "gzip"))
    reply = Reply(status, body, content_type, headers, delay_ms=d.int("slow_ms", 0) or 0)
    if d.has("close_mid"):
        reply.delivery = "close_mid"
    elif d.int("trickle_ms") is not None:
        reply.delivery, reply.trickle_ms = "trickle", d.int("trickle_ms") or 0
    elif d.has("chunked"):
        reply.delivery = "chunked"
    return reply


def path_directives(path: str) -> str:
    """Directives written as path segments of the base URL ("/mock:status=500/v1/...").

    They make one configured provider behave differently from another that
    points at the same mock.  They come first, so a directive in the message
    overrides them (the last occurrence of a name wins).
    """
    return "".join(f"[[{segment}]]" for segment in path.split("/") if segment.startswith("mock:"))


def handle_provider(ctx: RequestContext) -> Reply:
    """Route, validate and answer one provider request (no I/O)."""
    route = match_route(ctx.path)
    if route is None:
        return not_found_reply(ctx)
    proto, ctx.path_params = route
    try:
        if ctx.method != "POST":
            raise proto.method_not_allowed(ctx.method)
        proto.preflight(ctx)
        ctx.body = parse_json_object(proto, ctx)
        conv = proto.validate(ctx, ctx.body)
        proto.check_model(ctx, conv)
        try:
            directives, user_text = parse_directives(path_directives(ctx.path) + conv.last_user_text)
        except DirectiveError as exc:
            raise ApiError(400, str(exc)) from None
    except ApiError as err:
        return error_reply(proto, err, ctx.seq)
    return build_reply(proto, ctx, conv, directives, user_text)


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

@dataclass
class ConnState:
    id: int
    epoch: int = -1          # stats epoch in which this connection was last counted
    requests: int = 0        # provider requests on this connection (since counted)


class Stats:
    """Thread-safe connection and request accounting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0
        self._connections = 0
        self._requests = 0
        self._open: set[int] = set()
        self._last_request: dict[str, Any] | None = None
        self._next_conn_id = 0
        self._seq = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def new_connection(self) -> ConnState:
        with self._lock:
            self._next_conn_id += 1
            return ConnState(self._next_conn_id)

    def record_request(self, conn: ConnState, summary: dict[str, Any]) -> tuple[int, int]:
        """Count one provider request; returns (requests on this connection, response seq)."""
        with self._lock:
            if conn.epoch != self._epoch:
                conn.epoch, conn.requests = self._epoch, 0
                self._connections += 1
                self._open.add(conn.id)
            conn.requests += 1
            self._requests += 1
            self._seq += 1
            self._last_request = summary
            return conn.requests, self._seq

    def request_started(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def request_finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def connection_closed(self, conn: ConnState) -> None:
        with self._lock:
            if conn.epoch == self._epoch:
                self._open.discard(conn.id)

    def reset(self) -> None:
        with self._lock:
            self._epoch += 1
            self._connections = self._requests = 0
            self._open.clear()
            self._last_request = None
            self._max_in_flight = self._in_flight

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"connections": self._connections, "open_connections": len(self._open),
                    "requests": self._requests, "in_flight": self._in_flight,
                    "max_in_flight": self._max_in_flight, "last_request": self._last_request}


# --------------------------------------------------------------------------
# Control endpoints: webhook sink and exchange rates
# --------------------------------------------------------------------------

HOOK_NAME = r"[A-Za-z0-9_.-]{1,64}"
HOOK_PATH_RE = re.compile(rf"/_mock/hook/({HOOK_NAME})")
HOOK_RECORDS_PATH_RE = re.compile(rf"/_mock/hooks/({HOOK_NAME})")
HOOK_PARAMS: dict[str, tuple[int, int]] = {"fail": (0, 10**9), "status": (200, 599), "delay_ms": (0, 30_000)}
DEFAULT_RATES: dict[str, Any] = {"USD": 1, "BRL": 5.25, "EUR": 0.92}
MALFORMED_RATES = b'{"rates": '


def control_error(status: int, message: str) -> Reply:
    return json_reply(status, {"error": {"message": message}})


def status_reply(status: int, value: Any) -> Reply:
    """json_reply, except that 204 / 304 carry no body."""
    if status in (204, 304):
        return Reply(status, b"", None)
    return json_reply(status, value)


def is_json_content_type(value: str) -> bool:
    return value.split(";")[0].strip().lower() == "application/json"


def parse_int_params(query: str, allowed: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Integer query parameters NAME -> (lo, hi); ValueError for anything else."""
    out: dict[str, int] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            raise ValueError(f"unknown query parameter {name!r} (allowed: {', '.join(allowed)})")
        lo, hi = allowed[name]
        if not re.fullmatch(r"[0-9]+", value) or not lo <= int(value) <= hi:
            raise ValueError(f"invalid value for {name}: {value!r} (expected an integer {lo}..{hi})")
        out[name] = int(value)
    return out


class HookSink:
    """Thread-safe record of every request to every webhook name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[dict[str, Any]]] = {}

    def record(self, name: str, status_for: Callable[[int], int], body: Any, raw: str | None,
               headers: dict[str, str]) -> dict[str, Any]:
        """Append one attempt; status_for(n) decides its status from its attempt number."""
        with self._lock:
            records = self._records.setdefault(name, [])
            n = len(records) + 1
            rec: dict[str, Any] = {"n": n, "status": status_for(n), "body": body, "headers": headers,
                                   "at": time.time()}
            if raw is not None:
                rec["raw"] = raw
            records.append(rec)
            return rec

    def attempts(self, name: str) -> dict[str, Any]:
        with self._lock:
            records = list(self._records.get(name, ()))
        return {"attempts": records,
                "delivered": [rec["body"] for rec in records if 200 <= rec["status"] < 300]}

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {name: len(records) for name, records in self._records.items()}

    def reset(self) -> None:
        with self._lock:
            self._records.clear()


def hook_delivery(ctx: RequestContext, name: str, hooks: HookSink) -> Reply:
    """POST /_mock/hook/NAME: record the request, answer per fail= / status= / delay_ms=."""
    error: tuple[int, str] | None = None
    try:
        params = parse_int_params(ctx.query, HOOK_PARAMS)
    except ValueError as exc:
        params, error = {}, (400, str(exc))
    try:
        body, raw = parse_json(ctx.raw_body), None
    except ValueError:
        body, raw = None, ctx.raw_body.decode("utf-8", "replace")
    content_type = ctx.headers.get("content-type", "")
    if error is None and not is_json_content_type(content_type):
        error = (415, f"Content-Type must be application/json (got {content_type or 'none'!r})")
    if error is None and raw is not None:
        error = (400, "the request body must be a JSON value")

    def status_for(n: int) -> int:
        if error is not None:
            return error[0]
        if "status" in params:
            return params["status"]
        return 500 if n <= params.get("fail", 0) else 200

    status = hooks.record(name, status_for, body, raw, dict(ctx.headers))["status"]
    if error is not None:
        reply = control_error(*error)
    elif 200 <= status < 300:
        reply = status_reply(status, {"ok": True})
    else:
        reply = status_reply(status, {"error": "mock webhook failure"})
    reply.delay_ms = params.get("delay_ms", 0)
    return reply


def default_rates_config() -> dict[str, Any]:
    return {"status": 200, "rates": dict(DEFAULT_RATES), "base_code": "USD", "base": None, "malformed": False}


def parse_rates_config(raw: bytes) -> dict[str, Any]:
    """The body of POST /_mock/rates as a complete configuration; ValueError if invalid."""
    try:
        body = parse_json(raw)
    except ValueError as exc:
        raise ValueError(f"invalid JSON body ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    config = default_rates_config()
    for key, value in body.items():
        if key == "status":
            if not is_int(value) or not 200 <= value <= 599:
                raise ValueError(f"status must be an integer 200..599 (got {value!r})")
        elif key == "rates":
            if not isinstance(value, dict) or not all(is_number(v) for v in value.values()):
                raise ValueError("rates must be an object of currency code -> number")
        elif key in ("base_code", "base"):
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a string (got {value!r})")
        elif key == "malformed":
            if not isinstance(value, bool):
                raise ValueError(f"malformed must be a boolean (got {value!r})")
        else:
            raise ValueError(f"unknown key {key!r} (allowed: status, rates, base_code, base, malformed)")
        config[key] = value
    return config


class RatesDoc:
    """Thread-safe exchange-rate document configuration and GET count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = default_rates_config()
        self._requests = 0

    def configure(self, config: dict[str, Any]) -> None:
        with self._lock:
            self._config = config

    def fetch(self, count: bool) -> dict[str, Any]:
        """The current configuration (never mutated once stored); counts one GET if asked."""
        with self._lock:
            if count:
                self._requests += 1
            return self._config

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self._requests}

    def reset(self) -> None:
        with self._lock:
            self._config = default_rates_config()
            self._requests = 0


def rates_reply(config: dict[str, Any]) -> Reply:
    if config["malformed"]:
        return Reply(200, MALFORMED_RATES)
    status = config["status"]
    if not 200 <= status < 300:
        return status_reply(status, {"error": "mock rates failure"})
    if config["base"] is not None:
        doc = {"result": "success", "base": config["base"], "rates": config["rates"]}
    else:
        doc = {"result": "success", "base_code": config["base_code"], "rates": config["rates"]}
    return status_reply(status, doc)


def rates_configure(ctx: RequestContext, rates: RatesDoc) -> Reply:
    try:
        config = parse_rates_config(ctx.raw_body)
    except ValueError as exc:
        return control_error(400, str(exc))
    rates.configure(config)
    return json_reply(200, {})


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Logger:
    def __init__(self, path: str | None) -> None:
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1) if path else None

    def write(self, line: str) -> None:
        if self._file is None:
            return
        with self._lock:
            self._file.write(line if line.endswith("\n") else line + "\n")


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False      # never wait for idle keep-alive / slow handlers on shutdown
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api_key: str, logger: Logger,
                 tls: ssl.SSLContext | None = None) -> None:
        self.api_key = api_key
        self.logger = logger
        self.stats = Stats()
        self.hooks = HookSink()
        self.rates = RatesDoc()
        self.tls = tls
        super().__init__(address, MockHandler)

    def reset(self) -> None:
        """POST /_mock/reset: statistics, webhook records, rates document."""
        self.stats.reset()
        self.hooks.reset()
        self.rates.reset()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshakes happen here, in the connection's own thread, so a
        # client that fails verification never blocks the accept loop.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn() (a reverse DNS lookup).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (*DISCONNECT_ERRORS, OSError)):
            return
        self.report_exception()

    def report_exception(self) -> None:
        text = traceback.format_exc()
        self.logger.write(text)
        sys.stderr.write(f"mock_provider: internal error\n{text}")


class MockHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-gateway-mock/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: MockServer

    def version_string(self) -> str:
        return self.server_version

    # -- connection lifecycle ----------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.conn = self.server.stats.new_connection()

    def finish(self) -> None:
        self.server.stats.connection_closed(self.conn)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        self.server.logger.write(f"{self.address_string()} conn={self.conn.id} "
                                 f"[{self.log_date_time_string()}] {format % args}")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unsupported method): JSON, then close."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.send_response(code, message)
        self._write_simple(json_reply(code, {"error": {"message": message or phrase, "type": "invalid_request_error",
                                                       "param": None, "code": None}}, close_after=True))

    # -- method entry points ----------------------------------------------
    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def _dispatch(self) -> None:
        self._started = False
        try:
            self._dispatch_inner()
        except DISCONNECT_ERRORS:
            self.close_connection = True
        except Exception:  # a bug in the mock: report it, answer 500, drop the connection
            self.close_connection = True
            self.server.report_exception()
            if not self._started:
                try:
                    self._send_reply(json_reply(500, {"error": {"message": "mock internal error",
                                                                "type": "server_error", "param": None,
                                                                "code": None}}, close_after=True))
                except Exception:
                    pass

    def _dispatch_inner(self) -> None:
        path, _, query = self.path.partition("?")
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            raw = self._read_body(headers)
        except BodyError as exc:
            self._send_reply(json_reply(exc.status, {"error": {"message": exc.message, "type":
                                                               "invalid_request_error", "param": None,
                                                               "code": None}}, close_after=True))
            return
        if raw is None:  # client went away mid-body
            self.close_connection = True
            return
        ctx = RequestContext(self.command, path, query, headers, raw, self.server.api_key)
        if path == "/_mock" or path.startswith("/_mock/"):
            reply = self._control(ctx)
            if reply.delay_ms and not self._pause(reply.delay_ms / 1000):
                self.close_connection = True
                return
            self._send_reply(reply)
            return
        stats = self.server.stats
        ctx.conn_requests, ctx.seq = stats.record_request(self.conn, ctx.summary())
        ctx.conn_id = self.conn.id
        stats.request_started()
        try:
            reply = handle_provider(ctx)
            if reply.delay_ms and not self._pause(reply.delay_ms / 1000):
                self.close_connection = True
                return
            self._send_reply(reply)
        finally:
            stats.request_finished()

    def _control_route(self, ctx: RequestContext) -> dict[str, Callable[[], Reply]] | None:
        """The actions (by method) of a /_mock/* path, None if there is no such path."""
        server, stats, hooks, rates = self.server, self.server.stats, self.server.hooks, self.server.rates
        routes: dict[str, dict[str, Callable[[], Reply]]] = {
            "/_mock/stats": {"GET": lambda: json_reply(200, stats.snapshot())},
            "/_mock/reset": {"POST": lambda: (server.reset(), json_reply(200, {}))[1]},
            "/_mock/hooks": {"GET": lambda: json_reply(200, hooks.counts())},
            "/_mock/rates": {"GET": lambda: rates_reply(rates.fetch(count=ctx.method == "GET")),
                             "POST": lambda: rates_configure(ctx, rates)},
            "/_mock/rates/stats": {"GET": lambda: json_reply(200, rates.snapshot())},
        }
        if ctx.path in routes:
            return routes[ctx.path]
        m = HOOK_PATH_RE.fullmatch(ctx.path)
        if m:
            return {"POST": lambda: hook_delivery(ctx, m.group(1), hooks)}
        m = HOOK_RECORDS_PATH_RE.fullmatch(ctx.path)
        if m:
            return {"GET": lambda: json_reply(200, hooks.attempts(m.group(1)))}
        return None

    def _control(self, ctx: RequestContext) -> Reply:
        actions = self._control_route(ctx)
        if actions is None:
            return not_found_reply(ctx)
        method = "GET" if ctx.method == "HEAD" else ctx.method
        if method not in actions:
            allowed = " or ".join(actions)
            return json_reply(405, {"error": {"message": f"use {allowed}"}}, headers=[("Allow", ", ".join(actions))])
        return actions[method]()

    # -- request body -------------------------------------------------------
    def _read_body(self, headers: dict[str, str]) -> bytes | None:
        encoding = headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise BodyError(501, f"unsupported Transfer-Encoding {encoding!r}")
            return self._read_chunked()
        length = headers.get("content-length")
        if length is None:
            return b""
        if not re.fullmatch(r"\s*\d+\s*", length):
            raise BodyError(400, "invalid Content-Length")
        size = int(length)
        if size > MAX_BODY_BYTES:
            raise BodyError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        data = self.rfile.read(size)
        return data if len(data) == size else None

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                return None
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError(400, "invalid chunk size") from None
            total += size
            if total > MAX_BODY_BYTES:
                raise BodyError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
            if size == 0:
                while True:  # trailers up to the empty line
                    trailer = self.rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                return None
            parts.append(chunk)
            self.rfile.readline(8)  # CRLF after the chunk

    # -- response -----------------------------------------------------------
    def _client_gone(self) -> bool:
        """True if the peer closed its end (EOF pending) or the socket failed."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _pause(self, seconds: float) -> bool:
        """Sleep in short slices; False as soon as the client has disconnected."""
        deadline = time.monotonic() + seconds
        while True:
            if self._client_gone():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            time.sleep(min(SLICE_S, remaining))

    def _send_reply(self, reply: Reply) -> None:
        if reply.delivery == "close":
            self.close_connection = True
            return
        self._started = True
        self.send_response(reply.status)
        self._write_simple(reply)

    def _write_simple(self, reply: Reply) -> None:
        """Headers (status line already queued) and body, per the delivery mode."""
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.delivery == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
        if reply.close_after:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        body = reply.body
        if reply.delivery == "close_mid":
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif reply.delivery == "trickle":
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                if i + 1 < len(body) and not self._pause(reply.trickle_ms / 1000):
                    self.close_connection = True
                    return
        elif reply.delivery == "chunked":
            step = max(1, math.ceil(len(body) / 3))
            for start in range(0, len(body), step):
                piece = body[start:start + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def loopback_host(host: str) -> str | None:
    """The host to bind if it is a loopback address, else None."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{port}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def make_server(host: str, port: int, api_key: str, logger: Logger,
                tls: ssl.SSLContext | None = None) -> MockServer:
    server_class = MockServer
    if ":" in host:
        server_class = type("MockServer6", (MockServer,), {"address_family": socket.AF_INET6})
    return server_class((host, port), api_key, logger, tls)


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context when --tls-cert is given (HTTPS instead of HTTP)."""
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Strict mock of LLM provider APIs (see module docstring).")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = pick a free one)")
    parser.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key accepted by all protocols")
    parser.add_argument("--log", help="append request and error lines to this file")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="the private key of --tls-cert (default: in the same file)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = loopback_host(args.host)
    if host is None:
        print(f"mock_provider: refusing to listen on non-loopback address {args.host!r}", file=sys.stderr)
        return 2
    try:
        server = make_server(host, args.port, args.api_key, Logger(args.log),
                             tls_context(args.tls_cert, args.tls_key))
    except (OSError, ssl.SSLError) as exc:
        print(f"mock_provider: cannot listen on {host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="mock-serve", daemon=True)
    thread.start()
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    server.logger.write(f"mock_provider listening on {host}:{port}")
    while not stop.wait(0.5):
        if not thread.is_alive():
            return 1
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
