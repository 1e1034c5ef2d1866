"""Posts from the budgeted LLM: the prompt (``build_prompt``), reading the answer back (``parse_posts``)
and the generator that ties them to ``LLMClient`` (``LLMContentGenerator``, ``generation_source='llm'``).

The ``Key: value`` lines of the prompt are also what ``xbotlib.devtools.fake_openai`` reads.
"""
from __future__ import annotations

import re

import numpy as np

from xbotlib.clients.generation.candidates import MAX_POST_CHARS, Candidate
from xbotlib.clients.generation.templates import TemplateGenerator
from xbotlib.clients.llm import LLMClient
from xbotlib.core.vocab import HASHTAG_RE, HOOK_PATTERNS, TOPICS, detect_hook

SYSTEM_PROMPT = ("You write posts for an X (Twitter) account about {topics}. Voice: clear, specific, friendly, "
                 "no hype, no invented statistics. Rules for every post: at most 270 characters, no hashtags, "
                 "no links, no emojis, do not end by asking the reader a question.")

HOOK_INSTRUCTIONS: dict[str, str] = {
    "did_you_know": 'Open each post with "Did you know" or "Fun fact:" and share one surprising, true fact.',
    "new_study": 'Open each post with "New study:" or "Researchers" and report one real, well-known finding.',
    "question": ("Open each post with a short question (starting with What, Why or How and ending in '?'), "
                 "then answer it in a statement."),
    "contrarian": 'Open each post with "Unpopular opinion:" or "Hot take:" and argue against a common belief.',
    "cta": 'Open each post with "Try this:" or "Save this:" and give one concrete thing to do.',
    "plain": ("Write a plain, direct statement. Do not open with a question, 'Did you know', 'New study', "
              "'Hot take' or 'Try this'."),
}
ANGLE_INSTRUCTIONS: dict[str, str] = {
    "contrarian": "contrarian. Take a well-argued position against the common view.",
}


def build_prompt(hook: str, topic: str, n: int, *, angle: str | None = None, reply_to_text: str | None = None) -> str:
    """The user prompt for ``n`` posts; the ``Key: value`` lines are also what the fake server reads."""
    lines = [f"Hook pattern: {hook}", f"Topic: {topic}", f"Count: {n}", f"Instruction: {HOOK_INSTRUCTIONS[hook]}"]
    if angle:
        lines.append(f"Angle: {ANGLE_INSTRUCTIONS.get(angle, angle)}")
    if reply_to_text:
        flat = " ".join(reply_to_text.split())[:500]
        lines.append(f"Reply to: {flat}")
        lines.append("Write replies to that post that add something specific; do not repeat it.")
    lines.append(f"Return exactly {n} posts, one per line, without numbering or quotes.")
    return "\n".join(lines)


MIN_POST_CHARS = 20
_BULLET = re.compile(r'^\s*(?:\d+[.)]\s*|[-*•]\s+)?["“]?(.*?)["”]?\s*$')


def parse_posts(text: str, hook: str, topic: str, n: int, source: str = "llm") -> list[Candidate]:
    """Posts from the model's answer: one per line, numbering and quotes stripped; drops preambles
    ('Here are 3 posts:'), fragments under ``MIN_POST_CHARS``, lines over 280 characters, lines with
    hashtags and lines whose opening is not ``hook``."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for line in text.splitlines():
        post = _BULLET.match(line).group(1).strip()
        if len(post) < MIN_POST_CHARS or post.endswith(":") or post in seen:
            continue
        if len(post) > MAX_POST_CHARS or HASHTAG_RE.search(post):
            continue
        if detect_hook(post) != hook:
            continue  # the bandit arm must be what the text really is
        seen.add(post)
        out.append(Candidate(text=post, generation_source=source, hook_pattern=hook, topic=topic))
    return out[:n]


class LLMContentGenerator:
    """Posts from the budgeted LLM, marked ``generation_source='llm'``.

    When the LLM gives up (budget, circuit, rate limit) ``candidates`` returns [] and
    ``last_outcome`` says why; ``fallback`` is there for the plan job to call explicitly (its posts
    say 'template'), never mixed in silently.
    """

    def __init__(self, llm: LLMClient, fallback: TemplateGenerator | None = None):
        self.llm = llm
        self.fallback = fallback
        self.last_outcome = "none"

    def candidates(self, hook: str, topic: str, n: int, *, angle: str | None = None,
                   reply_to_text: str | None = None, rng: np.random.Generator | None = None) -> list[Candidate]:
        if hook not in HOOK_PATTERNS:
            raise ValueError(f"unknown hook pattern: {hook!r} (expected one of {', '.join(HOOK_PATTERNS)})")
        if topic not in TOPICS:
            raise ValueError(f"unknown topic: {topic!r} (expected one of {', '.join(TOPICS)})")
        if n <= 0:
            return []
        seed = int(rng.integers(2**31 - 1)) if rng is not None else None
        completion = self.llm.complete(SYSTEM_PROMPT.format(topics=", ".join(TOPICS)),
                                       build_prompt(hook, topic, n, angle=angle, reply_to_text=reply_to_text),
                                       purpose="reply" if reply_to_text else "post",
                                       max_tokens=min(1200, 90 * n + 40), seed=seed)
        if completion is None:
            self.last_outcome = self.llm.last_outcome
            return []
        posts = parse_posts(completion.text, hook, topic, n)
        self.last_outcome = "ok" if posts else "no_usable_posts"
        return posts
