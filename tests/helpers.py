"""Helpers shared by test modules (not fixtures)."""
from __future__ import annotations

from typing import Callable

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
