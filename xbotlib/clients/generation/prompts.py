"""Posts from the budgeted LLM: the prompt (``build_prompt``), reading the answer back (``parse_posts``)
and the generator that ties them to ``LLMClient`` (``LLMContentGenerator``, ``generation_source='llm'``).

The ``Key: value`` lines of the prompt are also what ``xbotlib.devtools.fake_openai`` reads.
"""
from __future__ import annotations

import re

import numpy as np

from xbotlib.clients.generation.candidates import MAX_POST_CHARS, Candidate
from xbotlib.clients.generation.templates import TemplateGenerator, topic_bodies, check_request
from xbotlib.clients.llm import LLMClient
from xbotlib.core import vocab
from xbotlib.core.profile import AccountProfile, default_profile
from xbotlib.core.vocab import HASHTAG_RE

# What every post needs whatever the niche: X's length, and no hashtags or closing questions (those are
# experiment arms, applied after generation). The profile's voice adds its persona, style and rules.
BUILTIN_RULES = ("at most 270 characters, no hashtags, no links, no emojis, do not end by asking the reader "
                 "a question")
MATERIAL_LINES = 12  # at most this many of the topic's facts / tips / claims go into a prompt


def system_prompt(profile: AccountProfile | None = None) -> str:
    """The account's voice as the LLM's system prompt: persona, style, the built-in rules plus the
    profile's own, the phrases it must never use and, for a language other than English, which one."""
    p = profile or default_profile()
    rules = ", ".join((BUILTIN_RULES, *p.voice.rules))
    text = f"{p.voice.persona} Voice: {p.voice.style}. Rules for every post: {rules}."
    if p.banned_phrases:
        text += " Never use these phrases: " + ", ".join(f'"{b}"' for b in p.banned_phrases) + "."
    if p.language != "en":
        text += f" Write every post in the language with code {p.language!r}."
    return text

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


def hook_instruction(profile: AccountProfile, hook: str) -> str:
    """How to open a post in ``hook``: the profile's language pack says it, English is built in."""
    if profile.language_pack is not None:
        return profile.language_pack.hook_instructions[hook]
    return HOOK_INSTRUCTIONS[hook]


def build_prompt(hook: str, topic: str, n: int, *, angle: str | None = None, reply_to_text: str | None = None,
                 profile: AccountProfile | None = None) -> str:
    """The user prompt for ``n`` posts; the ``Key: value`` lines are also what the fake server reads.

    The topic's keywords and its material (the profile's checked facts, tips or claims, as the
    templates would use them) ground the model in what the account owner vouches for.
    """
    p = profile or default_profile()
    t = p.topic(topic)
    lines = [f"Hook pattern: {hook}", f"Topic: {topic}", f"Keywords: {', '.join(t.keywords)}", f"Count: {n}",
             f"Instruction: {hook_instruction(p, hook)}",
             "Use keywords of the topic; base each post on one of these facts, in your own words:"]
    lines += [f"Material: {m}" for m in topic_bodies(p, hook, topic, angle)[:MATERIAL_LINES]]
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


def parse_posts(text: str, hook: str, topic: str, n: int, source: str = "llm",
                vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> list[Candidate]:
    """Posts from the model's answer: one per line, numbering and quotes stripped; drops preambles
    ('Here are 3 posts:'), fragments under ``MIN_POST_CHARS``, lines over 280 characters, lines with
    hashtags and lines whose opening is not ``hook`` (read with ``vocabulary``'s hook rules)."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for line in text.splitlines():
        post = _BULLET.match(line).group(1).strip()
        if len(post) < MIN_POST_CHARS or post.endswith(":") or post in seen:
            continue
        if len(post) > MAX_POST_CHARS or HASHTAG_RE.search(post):
            continue
        if vocabulary.detect_hook(post) != hook:
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

    def __init__(self, llm: LLMClient, fallback: TemplateGenerator | None = None,
                 profile: AccountProfile | None = None):
        self.llm = llm
        self.fallback = fallback
        self.profile = profile or default_profile()
        self.last_outcome = "none"

    def candidates(self, hook: str, topic: str, n: int, *, angle: str | None = None,
                   reply_to_text: str | None = None, rng: np.random.Generator | None = None) -> list[Candidate]:
        check_request(self.profile, hook, topic, max(n, 0), angle)
        if n <= 0:
            return []
        seed = int(rng.integers(2**31 - 1)) if rng is not None else None
        completion = self.llm.complete(system_prompt(self.profile),
                                       build_prompt(hook, topic, n, angle=angle, reply_to_text=reply_to_text,
                                                    profile=self.profile),
                                       purpose="reply" if reply_to_text else "post",
                                       max_tokens=min(1200, 90 * n + 40), seed=seed)
        if completion is None:
            self.last_outcome = self.llm.last_outcome
            return []
        posts = parse_posts(completion.text, hook, topic, n, vocabulary=self.profile.vocabulary())
        self.last_outcome = "ok" if posts else "no_usable_posts"
        return posts
