"""A scriptable, OpenAI-compatible fake server for tests, benchmarks and the demo.

It answers ``POST /v1/chat/completions`` and ``POST /v1/embeddings`` with OpenAI's JSON shapes
(ids, choices, usage, error bodies and rate-limit headers), so the real ``openai`` SDK talks to it
over real HTTP. Each request takes the next scripted *kind*; with an empty script it answers 200.

Kinds
-----
``200``            a completion / embedding; usage counted from the text (~4 chars per token)
``200:PT,CT``      the same, but reporting ``PT`` prompt and ``CT`` completion tokens in ``usage``
``429_rate``       rate limit (error.code=rate_limit_exceeded) with ``retry-after-ms`` / ``retry-after``
``429_rate:MS``    … with ``retry-after-ms: MS``; ``429_rate:none`` sends no retry headers
``429_quota``      insufficient_quota (error.type = error.code = insufficient_quota), no retry headers
``500`` ``503``    server errors (any other 4xx/5xx number works too, e.g. ``400``)
``slow`` ``slow:S`` sleep ``S`` seconds (default ``slow_s``) then answer 200: a client timeout

``FakeOpenAI(delay_s=30)`` answers every chat completion ``delay_s`` seconds late (an LLM that is slow, not
failing: ``bench/bench_workers.py --llm-delay 30``).

The default answer is a plausible post: the fake reads the ``Hook pattern:``, ``Topic:``, ``Keywords:``,
``Material:``, ``Count:``, ``Angle:`` and ``Reply to:`` lines that ``xbotlib.clients.generation.prompts``
puts in its prompt and writes that many posts with the template generator over that material (any
account's topic: the prompt carries it), seeded from the request, so the same request gets the same
answer. A prompt without material gets generic text built from the topic's keywords.

Usage::

    with FakeOpenAI() as fake:          # starts on a free 127.0.0.1 port
        fake.script(["429_rate", "200"])
        settings = settings.replace(openai_base_url=fake.base_url, openai_api_key="sk-test")
        ...
        assert len(fake.requests) == 2
"""
from __future__ import annotations

import base64
import json
import math
import re
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

import numpy as np

from xbotlib.clients.generation import TemplateGenerator
from xbotlib.core.profile import AccountProfile, Topic, Voice, default_profile
from xbotlib.core.vocab import HOOK_PATTERNS

CREATED_EPOCH = 1_767_225_600  # fixed 'created' stamp (2026-01-01): answers are deterministic


@dataclass
class RecordedRequest:
    """What arrived and how the fake answered it."""
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    kind: str
    status: int
    usage: dict[str, int] | None = None
    response: dict[str, Any] | None = field(default=None, repr=False)


def error_body(kind: str, status: int, model: str) -> tuple[dict, dict[str, str]]:
    """The JSON body and headers OpenAI sends for an error ``kind``."""
    name, _, arg = kind.partition(":")
    if name == "429_rate":
        headers = {} if arg == "none" else {"retry-after-ms": arg or "250", "retry-after": "1",
                                            "x-ratelimit-remaining-requests": "0"}
        return ({"error": {"message": f"Rate limit reached for {model} on requests per min (RPM): "
                                      "Limit 3, Used 3, Requested 1. Please try again in 250ms.",
                           "type": "requests", "param": None, "code": "rate_limit_exceeded"}}, headers)
    if name == "429_quota":
        return ({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                           "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}, {})
    if status >= 500:
        message = ("The engine is currently overloaded, please try again later." if status == 503
                   else "The server had an error while processing your request. Sorry about that!")
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}, {}
    return ({"error": {"message": f"fake error {status}", "type": "invalid_request_error", "param": None,
                       "code": None}}, {})


def parse_kind(kind: str) -> tuple[str, int]:
    """('429_rate:100', 429) etc.; raises ValueError naming an unknown kind."""
    name = kind.partition(":")[0]
    if name in ("200", "slow"):
        return kind, 200
    if name in ("429_rate", "429_quota"):
        return kind, 429
    if name.isdigit() and 400 <= int(name) <= 599:
        return kind, int(name)
    raise ValueError(f"unknown FakeOpenAI kind: {kind!r} (expected 200, 200:PT,CT, 429_rate[:MS|none], "
                     "429_quota, 500, 503, slow[:S] or another 4xx/5xx status)")


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _prompt_field(prompt: str, name: str) -> str | None:
    m = re.search(rf"^{name}:\s*(.+)$", prompt, re.M | re.I)
    return m.group(1).strip() if m else None


_GENERIC_BODIES = ("Getting better at {k} is mostly about doing it a little every week.",
                   "The people who love {k} usually started with one small habit.",
                   "Most mistakes with {k} come from rushing the first step.",
                   "A little patience with {k} pays off more than any gadget.")


def _prompt_profile(prompt: str, topic: str | None, rng: np.random.Generator) -> tuple[AccountProfile, str]:
    """A one-topic profile from what the prompt says about its topic (keywords, material), so the fake
    writes about any account's topic; a bare prompt gets the built-in niche (or generic keyword text)."""
    keywords = [k.strip() for k in (_prompt_field(prompt, "Keywords") or "").split(",") if k.strip()]
    material = tuple(m.strip() for m in re.findall(r"^Material:\s*(.+)$", prompt, re.M) if m.strip())
    builtin = default_profile()
    if not keywords:
        if topic not in builtin.topic_names:
            topic = builtin.topic_names[int(rng.integers(len(builtin.topic_names)))]
        if not material:
            return builtin, topic
        keywords = list(builtin.topic(topic).keywords)
    topic = topic or "topic"
    bodies = material or tuple(b.format(k=k) for k in keywords[:3] for b in _GENERIC_BODIES)
    t = Topic(name=topic, keywords=tuple(keywords), hashtag="#Topic", facts=bodies, tips=bodies, claims=bodies)
    return AccountProfile(id="fake", handle="fake", display_name="fake", language="en", timezone="UTC", topics=(t,),
                          voice=Voice("", ""), hooks=HOOK_PATTERNS, banned_phrases=()), topic


def fake_posts(messages: list[dict], seed: int) -> str:
    """The fake model's answer: posts for the hook/topic/count named in the prompt, one per line."""
    prompt = "\n".join(str(m.get("content") or "") for m in messages)
    rng = np.random.default_rng(seed)
    hook = _prompt_field(prompt, "Hook pattern")
    hook = hook if hook in HOOK_PATTERNS else HOOK_PATTERNS[int(rng.integers(len(HOOK_PATTERNS)))]
    profile, topic = _prompt_profile(prompt, _prompt_field(prompt, "Topic"), rng)
    count = _prompt_field(prompt, "Count")
    n = min(20, int(count)) if count and count.isdigit() else 1
    angle = _prompt_field(prompt, "Angle")
    angle = angle.split()[0].strip(".:,").lower() if angle else None
    reply = _prompt_field(prompt, "Reply to")
    cands = TemplateGenerator(seed, profile).candidates(hook, topic, n, angle=angle if angle == "contrarian" else None,
                                               reply_to_text=reply, rng=rng)
    return "\n".join(c.text for c in cands)


def fake_embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit vector from hashed words: similar texts get similar vectors."""
    vec = np.zeros(dim)
    for word in re.findall(r"\w+", text.lower()):
        h = zlib.crc32(word.encode())
        vec[h % dim] += 1.0 if (h >> 16) & 1 else -1.0
    norm = np.linalg.norm(vec)
    if norm == 0:
        vec[0], norm = 1.0, 1.0
    return [float(x) for x in vec / norm]


class FakeOpenAI:
    """A scriptable OpenAI-compatible HTTP server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, slow_s: float = 2.0, embedding_dim: int = 64, delay_s: float = 0.0):
        self.slow_s = slow_s
        self.delay_s = delay_s
        self.embedding_dim = embedding_dim
        self.requests: list[RecordedRequest] = []
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting
    def script(self, kinds: Iterable[str]) -> "FakeOpenAI":
        """Replace the queue of answers with ``kinds`` (then 200 forever)."""
        kinds = list(kinds)
        for k in kinds:
            parse_kind(k)
        with self._lock:
            self._queue = deque(kinds)
        return self

    def push(self, *kinds: str) -> "FakeOpenAI":
        """Append answers to the queue."""
        for k in kinds:
            parse_kind(k)
        with self._lock:
            self._queue.extend(kinds)
        return self

    def reset(self) -> "FakeOpenAI":
        """Forget the script and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
        return self

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def _next_kind(self) -> str:
        with self._lock:
            return self._queue.popleft() if self._queue else "200"

    # -- lifecycle
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running: call .start() (or use it as a context manager)")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> str:
        """Serve on a free port in a background thread; returns the base URL (…/v1)."""
        if self._server is None:
            fake = self

            class Handler(_Handler):
                owner = fake

            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            server.block_on_close = False
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-openai", daemon=True)
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- answers
    def answer(self, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
        """Pick the next kind and build (status, json body, headers); records the request."""
        kind, status = parse_kind(self._next_kind())
        model = str(body.get("model") or "gpt-4o-mini")
        rec = RecordedRequest(path=path, body=body, headers=headers, kind=kind, status=status)
        with self._lock:  # recorded on arrival, so a slow answer cannot land in a later test's list
            index = len(self.requests)
            self.requests.append(rec)
        if status != 200:
            payload, extra = error_body(kind, status, model)
            rec.response = payload
            return status, payload, extra
        name, _, arg = kind.partition(":")
        if name == "slow":
            time.sleep(float(arg) if arg else self.slow_s)
        usage_override = tuple(int(x) for x in arg.split(",")) if name == "200" and arg else None
        if path.endswith("/embeddings"):
            payload = self._embeddings(body, model, usage_override)
        elif path.endswith("/chat/completions"):
            if self.delay_s:
                time.sleep(self.delay_s)
            payload = self._chat(body, model, usage_override, index)
        else:
            payload = {"error": {"message": f"Invalid URL (POST {path})", "type": "invalid_request_error",
                                 "param": None, "code": None}}
            rec.status, rec.response = 404, payload
            return 404, payload, {}
        rec.usage, rec.response = payload["usage"], payload
        return 200, payload, {"x-request-id": f"req_fake_{index}"}

    def _chat(self, body: dict, model: str, usage_override: tuple[int, ...] | None, index: int) -> dict:
        messages = body.get("messages") or []
        raw = json.dumps(messages, sort_keys=True)
        seed = int(body["seed"]) if isinstance(body.get("seed"), int) else zlib.crc32(raw.encode())
        text = fake_posts(messages, seed)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if max_tokens and _tokens(text) > int(max_tokens):
            text, finish = text[: int(max_tokens) * 4], "length"
        prompt_tokens = sum(_tokens(str(m.get("content") or "")) + 4 for m in messages) + 3
        completion_tokens = _tokens(text)
        if usage_override:
            prompt_tokens, completion_tokens = usage_override[0], usage_override[-1]
        return {
            "id": f"chatcmpl-fake{index:06d}{seed % 100000:05d}",
            "object": "chat.completion",
            "created": CREATED_EPOCH + index,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _embeddings(self, body: dict, model: str, usage_override: tuple[int, ...] | None) -> dict:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in (inputs or [])]
        dim = int(body.get("dimensions") or self.embedding_dim)
        data = []
        for i, text in enumerate(texts):
            vec = fake_embedding(text, dim)
            emb: Any = vec
            if body.get("encoding_format") == "base64":
                emb = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        prompt_tokens = usage_override[0] if usage_override else sum(_tokens(t) for t in texts)
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, {"error": {"message": "We could not parse the JSON body of your request.",
                                       "type": "invalid_request_error", "param": None, "code": None}}, {})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.owner.answer(self.path, body, headers)
        self._send(status, payload, extra)

    def _send(self, status: int, payload: dict, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass
