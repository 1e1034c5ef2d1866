"""Offline content: a template generator that writes realistic posts without any API.

``TemplateGenerator(seed, profile)`` writes posts for every (allowed hook pattern x topic) of an
account profile (``xbotlib.core.profile``; default: the built-in ``accounts/default.toml``), marked
``generation_source='template'``. Each post is an opener (the hook, from the profile's language pack)
+ a body (one of the topic's facts, tips or contrarian claims, from the profile) + an optional closer,
so one hook x topic cell has hundreds of distinct texts. The pieces obey two rules, checked by
``template_problems`` (``xbot account check``) and by tests for every combination:

- openers and closers contain no topic keyword, and each body contains keywords of its own topic
  only, so ``vocab.detect_topic`` reads the requested topic back;
- the opener alone decides ``vocab.detect_hook``; bodies contain no '.', '!' or '?' before their
  final period, so a question opener stays a question.

No hashtags and no closing question: those are experiment arms, applied elsewhere. The ``question``
hook opens with a question and always continues with a statement.

``Candidate`` and the ``ContentGenerator`` protocol live in ``xbotlib.clients.generation.candidates``.
"""
from __future__ import annotations

import re

import numpy as np

from xbotlib.clients.generation.candidates import MAX_POST_CHARS, Candidate
from xbotlib.core.profile import AccountProfile, LanguagePack, default_profile
from xbotlib.core import vocab
from xbotlib.core.vocab import HOOK_PATTERNS

ANGLES: tuple[str, ...] = ("contrarian",)


# ----------------------------------------------------------------------------- the English language pack
# A profile's topics bring the bodies (facts are statements; tips imperatives, for call-to-action
# hooks; claims contrarian). What follows is the English hook material every "en" profile shares.
# {S} = the body as a sentence, {c} = the body as a clause (lower-case start, no final period).
OPENERS: dict[str, tuple[str, ...]] = {
    "did_you_know": ("Did you know? {S}", "Did you know that {c}? {S2}", "Fun fact: {S}", "TIL {c}.",
                     "Today I learned that {c}.", "Fun fact most people miss: {S}"),
    "new_study": ("New study: {S}", "New research points the same way: {S}", "Researchers keep finding that {c}.",
                  "A new study adds to the evidence: {S}", "Study: {S}", "New data backs this up: {S}"),
    "question": ("Why does nobody mention that {c}? {S2}", "What if I told you that {c}? {S2}",
                 "Would you have guessed that {c}? {S2}", "How many people know that {c}? {S2}",
                 "Is it just me, or is it wild that {c}? {S2}", "Why do we keep forgetting that {c}? {S2}"),
    "contrarian": ("Unpopular opinion: {S}", "Hot take: {S}", "Contrary to popular belief, {c}.",
                   "Most people are wrong about this: {S}", "Everyone says otherwise, but {c}.",
                   "Stop believing the opposite: {S}", "Actually, {c}."),
    "cta": ("Try this: {S}", "Do this today: {S}", "Save this for later: {S}", "Bookmark this: {S}",
            "Here's how to start: {S}", "Share this with someone who needs it: {S}", "Follow for more like this: {S}"),
    "plain": ("{S}", "One thing I keep noticing: {c}.", "Quick note: {S}", "Small detail, big effect: {c}.",
              "Worth knowing: {S}", "Noted for later: {S}"),
}
# Call-to-action openers that fit a statement (a contrarian claim is not an instruction to try).
CTA_STATEMENT_OPENERS: tuple[str, ...] = ("Save this for later: {S}", "Bookmark this: {S}",
                                          "Share this with someone who needs it: {S}", "Follow for more like this: {S}")
# What follows a question opener: a statement, never a question (closing questions are an experiment arm).
QUESTION_FOLLOWUPS: tuple[str, ...] = ("It changes how you plan.", "It sounds small, but it adds up.",
                                       "Most people learn it too late.", "The evidence is pretty clear.",
                                       "Once you see it, you cannot unsee it.", "Worth remembering.")
CLOSERS: tuple[str, ...] = ("", "", "Worth remembering.", "Small change, real results.", "Simple, not easy.",
                            "Underrated.", "Compounding does the rest.", "Worth a second look.",
                            "The boring answer is usually the right one.", "Give it a week and see.")
REPLY_CLOSERS: tuple[str, ...] = ("That's why this post lands.", "Your point holds up here too.",
                                  "Agree, and it goes further than this post says.", "Exactly what this thread gets at.",
                                  "Adding this to the conversation.", "Good thread; this fits right in.")


def _clause(sentence: str) -> str:
    """'Most AI gains….' -> 'most AI gains…' (keeps acronyms such as 'AI' or 'LLM' upper-case)."""
    body = sentence.rstrip(".")
    first = body.split(" ", 1)[0]
    if first[:2].isupper() or first == "I":
        return body
    return body[0].lower() + body[1:]


EN_PACK = LanguagePack(hook_rules={h: p.pattern for h, p in vocab.DEFAULT.hook_rules}, openers=OPENERS,
                       closers=CLOSERS, reply_closers=REPLY_CLOSERS, question_followups=QUESTION_FOLLOWUPS,
                       hook_instructions={}, reader_questions=vocab.READER_QUESTIONS,
                       cta_statement_openers=CTA_STATEMENT_OPENERS)


def language_pack(profile: AccountProfile) -> LanguagePack:
    """The profile's hook material: its own ``[language_pack]``, or the built-in English one."""
    return profile.language_pack or EN_PACK


def _openers(pack: LanguagePack, hook: str, angle: str | None) -> tuple[str, ...]:
    if hook == "cta" and angle == "contrarian" and pack.cta_statement_openers:
        return pack.cta_statement_openers
    return pack.openers[hook]


def topic_bodies(profile: AccountProfile, hook: str, topic: str, angle: str | None) -> tuple[str, ...]:
    t = profile.topic(topic)
    if angle == "contrarian":
        return t.claims
    return t.tips if hook == "cta" else t.facts


def compose(opener: str, body: str, closer: str, followup: str = "") -> str:
    """Fill one opener with one body and append the closer; pure, so tests can check every piece."""
    text = opener.format(S=body, c=_clause(body), S2=followup or "Worth remembering.")
    return f"{text} {closer}".strip() if closer else text


class TemplateGenerator:
    """Offline posts for every allowed hook pattern x topic of a profile, deterministic for a seed.

    Parameters
    ----------
    seed : int
        Seeds the generator used when ``candidates`` gets no ``rng``.
    profile : AccountProfile, optional
        The account's niche (topics and their material, allowed hooks, language); default the
        built-in one (``accounts/default.toml``).
    """

    generation_source = "template"

    def __init__(self, seed: int = 0, profile: AccountProfile | None = None):
        self.seed = seed
        self.profile = profile or default_profile()
        self.pack = language_pack(self.profile)
        self._rng = np.random.default_rng(seed)

    def candidates(self, hook: str, topic: str, n: int, *, angle: str | None = None,
                   reply_to_text: str | None = None, rng: np.random.Generator | None = None) -> list[Candidate]:
        """Up to ``n`` distinct posts in ``hook`` about ``topic`` (fewer only if the cell runs out).

        Within one call every post has a different body, so a batch holds no near-duplicates.
        ``angle='contrarian'`` writes contrarian claims; ``reply_to_text`` writes replies to that post.
        """
        check_request(self.profile, hook, topic, n, angle)
        rng = rng if rng is not None else self._rng
        pack = self.pack
        bodies = topic_bodies(self.profile, hook, topic, angle)
        openers = _openers(pack, hook, angle)
        closers = pack.reply_closers if reply_to_text else pack.closers
        followups = pack.question_followups
        order = rng.permutation(len(bodies))
        out: list[Candidate] = []
        seen: set[str] = set()
        for i in range(n):
            body = bodies[order[i % len(bodies)]]
            # several tries so a repeated body (n > len(bodies)) still gives a new text
            for _ in range(20):
                opener = openers[rng.integers(len(openers))]
                closer = closers[rng.integers(len(closers))]
                if hook == "question" and not reply_to_text:
                    closer = ""  # the follow-up statement already closes a question post
                followup = followups[rng.integers(len(followups))]
                text = compose(opener, body, closer, followup)
                if len(text) > MAX_POST_CHARS:
                    text = compose(opener, body, "", followup)
                if text not in seen and len(text) <= MAX_POST_CHARS:
                    break
            else:
                continue
            seen.add(text)
            out.append(Candidate(text=text, generation_source=self.generation_source, hook_pattern=hook, topic=topic))
        return out


def check_request(profile: AccountProfile, hook: str, topic: str, n: int, angle: str | None = None) -> None:
    """A request the profile can answer, or a ValueError naming the value (shared with the LLM generator)."""
    if hook not in HOOK_PATTERNS:
        raise ValueError(f"unknown hook pattern: {hook!r} (expected one of {', '.join(HOOK_PATTERNS)})")
    if hook not in profile.hooks:
        raise ValueError(f"hook pattern {hook!r} is not allowed for account {profile.id!r} "
                         f"(its profile allows {', '.join(profile.hooks)})")
    if topic not in profile.topic_names:
        raise ValueError(f"unknown topic: {topic!r} (expected one of {', '.join(profile.topic_names)})")
    if angle is not None and angle not in ANGLES:
        raise ValueError(f"unknown angle: {angle!r} (expected None or one of {', '.join(ANGLES)})")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")


_SENTENCE_MARK = re.compile(r"[.!?]")


def template_problems(profile: AccountProfile) -> list[str]:
    """What breaks the template rules (see the module docstring) in ``profile``, one line each; [] when none.

    Bodies must read back as their own topic only and hold one sentence; the openers, closers and
    follow-ups the profile uses must name no topic (else ``detect_topic`` reads the wrong one); no
    piece may contain a banned phrase (the quality gate would refuse every post made with it).
    """
    v = profile.vocabulary()
    pack = language_pack(profile)
    where = profile.source
    problems: list[str] = []

    def hits(text: str) -> dict[str, int]:
        low = text.lower()
        return {t: len(v._topic_res[t].findall(low)) for t in v.topics}

    def banned_in(text: str) -> list[str]:
        return [b for b in profile.banned_phrases if b in text.lower()]

    for i, t in enumerate(profile.topics):
        for kind in ("facts", "tips", "claims"):
            for j, body in enumerate(getattr(t, kind)):
                key = f"{where}: topics[{i}].{kind}[{j}] = {body!r}"
                h = hits(body)
                others = sorted(o for o, n in h.items() if n and o != t.name)
                if not h[t.name]:
                    problems.append(f"{key} has none of topic {t.name!r}'s keywords (add one: "
                                    f"{', '.join(t.keywords)})")
                if others:
                    problems.append(f"{key} has keywords of other topics: {', '.join(others)} (reword it; a body "
                                    "must read back as its own topic)")
                if not body.endswith(".") or _SENTENCE_MARK.search(body[:-1]):
                    problems.append(f"{key} must be one sentence ending in '.' with no '.', '!' or '?' before it "
                                    "(use ';' or ',')")
                if banned_in(body):
                    problems.append(f"{key} contains banned phrase(s) {', '.join(banned_in(body))}")
    pieces = [(f"language_pack.openers.{h}", o) for h in profile.hooks for o in pack.openers.get(h, ())]
    pieces += [("language_pack.closers", c) for c in pack.closers if c]
    pieces += [("language_pack.reply_closers", c) for c in pack.reply_closers]
    pieces += [("language_pack.question_followups", c) for c in pack.question_followups]
    pieces += [("language_pack.cta_statement_openers", c) for c in pack.cta_statement_openers]
    for key, piece in pieces:
        h = {t: n for t, n in hits(piece.replace("{S}", "").replace("{c}", "").replace("{S2}", "")).items() if n}
        if h:
            problems.append(f"{where}: {key} piece {piece!r} has keywords of topic(s) {', '.join(sorted(h))} "
                            "(reword the piece or the keyword: openers and closers must name no topic)")
        if banned_in(piece):
            problems.append(f"{where}: {key} piece {piece!r} contains banned phrase(s) {', '.join(banned_in(piece))}")
    for h in profile.hooks:
        for o in _openers(pack, h, None):
            sample = compose(o, "Xx placeholder body.", "", pack.question_followups[0])
            if v.detect_hook(sample) != h:
                problems.append(f"{where}: opener {o!r} of hook {h!r} reads back as {v.detect_hook(sample)!r} "
                                "(fix the opener or the language pack's hook_rules)")
    return problems
