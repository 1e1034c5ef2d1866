"""Helpers shared by test modules (not fixtures)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import httpx
import uvicorn

import numpy as np

from xbotlib.store import queue
from xbotlib.core import vocab
from xbotlib.core.features import LocalEmbedder, extract_features
from xbotlib.clients.generation import TemplateGenerator


def queue_template_posts(ctx, n: int, *, seed: int = 0,
                         topic_of: Callable[[int], str] = lambda i: vocab.TOPICS[i % len(vocab.TOPICS)]) -> list[str]:
    """Queue ``n`` template posts due now, with real texts and feature records; returns decision ids.

    Hooks cycle through the hook patterns; ``topic_of(i)`` picks the i-th post's topic.
    """
    now = ctx.clock.now()
    gen, rng, emb = TemplateGenerator(seed), np.random.default_rng(seed), LocalEmbedder()
    ids, recent = [], None
    with ctx.db.connection() as conn:
        queue.ensure_account(conn, ctx.account_id, now, ctx.settings.timezone)
        for i in range(n):
            hook, topic = vocab.HOOK_PATTERNS[i % len(vocab.HOOK_PATTERNS)], topic_of(i)
            text = gen.candidates(hook, topic, 1, rng=rng)[0].text
            e = emb.embed([text])[0]
            f = extract_features(text, embedding=e, recent_embeddings=recent, novelty_min=ctx.settings.novelty_min,
                                 topic=topic, hour=now.hour)
            recent = e[None, :] if recent is None else np.vstack([recent, e])
            ids.append(str(queue.insert_decision(conn, queue.Decision(
                account_id=ctx.account_id, content=text, generation_source="template", status="queued", topic=topic,
                hook_pattern=f.hook, novelty=f.novelty, readability=f.readability, sentiment=f.sentiment,
                dup_penalty=f.dup_penalty, features=f.to_dict(), bandit_arm=hook, bandit_propensity=1 / 6,
                timing_arm=str(now.hour), timing_propensity=1.0, scheduled_at=now), now)))
    return ids


@contextmanager
def served_over_http(app) -> Iterator[str]:
    """Serve an ASGI ``app`` (e.g. ``SandboxX.socket_app()``) with uvicorn on a free loopback port, in a
    thread; yields its base URL and stops it on exit. To xbot such a sandbox is 'live X' over HTTP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


REPO = Path(__file__).resolve().parents[1]


def auth_login(child_env: dict[str, str], *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run `xbot auth login --no-browser` with ``child_env`` (the whole environment of the process) and act
    as the owner's browser on the URL it prints: authorize -> 302 -> the CLI's loopback callback.
    Returns (the finished process, with the lines read so far in its stdout; the authorize URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "auth", "login", "--no-browser",
                             "--timeout", "60", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env, cwd=REPO)
    url, lines = None, []
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("http"):
            url = line.strip()
    assert url, "".join(lines) + proc.stderr.read()
    page = httpx.get(url, follow_redirects=True, timeout=30)
    out, err = proc.communicate(timeout=60)
    assert page.status_code == 200 and "signed in" in page.text, page.text[:300]
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + out, err), url


# the admin API's tests on a seeded history: the token they sign in with, the account they read, the history
ADMIN_TOKEN = "test-admin-token-7c1e55d0"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
API_ACCOUNT = "acct1"


def seed_api_history(db, clock):
    """40 days of ``API_ACCOUNT``'s history (3 days of job runs) beside 20 of a neighbour's, whose rows every
    per-account read must leave out; returns ``db``."""
    # imported here: seed_history loads the sandbox, which most tests importing this module never need
    from xbotlib.devtools.seed_history import HistorySpec, seed_history
    seed_history(db, HistorySpec(API_ACCOUNT, clock.now(), days=40, seed=11, job_run_days=3))
    seed_history(db, HistorySpec("neighbour", clock.now(), days=20, seed=12, job_runs=False))
    return db


def admin_client(settings, db, clock):
    """A TestClient of the admin API on ``db``, signed in with ``ADMIN_TOKEN``."""
    # imported here: the API app (FastAPI) is heavy and only the API tests need it
    from fastapi.testclient import TestClient
    from xbotlib.app.api.app import create_app
    return TestClient(create_app(settings.replace(admin_token=ADMIN_TOKEN), db, clock), headers=BEARER)
