"""Account profiles: one reviewable TOML file per account describing its niche (issue #18).

An ``AccountProfile`` says who the account is (id, handle, display name, language, time zone), what it
talks about (topics: detection keywords, hashtag, and the facts / tips / contrarian claims the offline
templates and the LLM prompt draw on), how it sounds (voice: persona, style, extra rules), what it must
never say (banned phrases), when and how much it posts (local hours, caps), how it finds conversations
to reply to (search queries per topic) and which hook patterns it may use. ``profile.vocabulary()`` is
the ``core.vocab.Vocabulary`` every part reads; ``profile.settings_overrides()`` the settings a stored
profile sets for its account (they win over the environment's).

Pure: ``parse_profile`` validates a dict; ``load_profile`` reads a TOML file and parses it. Every error
names the file, the key and the value and says the fix; unknown keys are errors, so a typo cannot pass
silently. English hook openers, closers and detection rules are built in (the "en" language pack, in
``xbotlib.clients.generation.templates``); a profile in another language brings its own in ``[language_pack]``.

Size: over 400 lines because the schema (every key, its type and its error message) is one table that
reads best in one place, next to the dataclasses it fills.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from xbotlib.config import PROJECT_ROOT
from xbotlib.core import vocab
from xbotlib.core.vocab import HOOK_PATTERNS, Vocabulary

ACCOUNTS_DIR = PROJECT_ROOT / "accounts"
DEFAULT_PROFILE_PATH = ACCOUNTS_DIR / "default.toml"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")   # X's rule for a handle (without "@")
_HASHTAG_RE = re.compile(r"^#\w+$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
# the hooks whose opener a language pack must say how to detect ('plain' is the fallback: no rule)
DETECTED_HOOKS = tuple(h for h in HOOK_PATTERNS if h != "plain")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file, the key, the value and the fix."""


@dataclass(frozen=True)
class Topic:
    """One topic: detection ``keywords`` (lower case, matched where a word starts with them), its
    ``hashtag`` (the hashtag experiment arm) and the template material: ``facts`` (statements),
    ``tips`` (imperatives, for call-to-action hooks) and ``claims`` (contrarian statements)."""
    name: str
    keywords: tuple[str, ...]
    hashtag: str
    facts: tuple[str, ...]
    tips: tuple[str, ...]
    claims: tuple[str, ...]


@dataclass(frozen=True)
class Voice:
    """The LLM system prompt's persona ("You write posts for …"), its style ("clear, specific, …")
    and extra rules appended to the built-in ones (length, no hashtags, no closing question)."""
    persona: str
    style: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class LanguagePack:
    """The hook openers and detection phrases of one language (English is built in).

    ``hook_rules``: a regular expression per detected hook, matched at the start of the first line;
    ``openers``: per allowed hook, templates with ``{S}`` (the body as a sentence), ``{c}`` (as a
    clause) and, for questions, ``{S2}`` (the follow-up statement); ``closers`` / ``reply_closers``:
    what may end a post / a reply; ``question_followups``: statements after a question opener;
    ``hook_instructions``: the LLM's instruction per allowed hook; ``reader_questions``: the closing
    questions of the reader-question experiment arm."""
    hook_rules: Mapping[str, str]
    openers: Mapping[str, tuple[str, ...]]
    closers: tuple[str, ...]
    reply_closers: tuple[str, ...]
    question_followups: tuple[str, ...]
    hook_instructions: Mapping[str, str]
    reader_questions: tuple[str, ...]
    cta_statement_openers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountProfile:
    """One account's niche; see the module docstring. Build with ``parse_profile`` / ``load_profile``."""
    id: str
    handle: str
    display_name: str
    language: str
    timezone: str
    topics: tuple[Topic, ...]
    voice: Voice
    hooks: tuple[str, ...]
    banned_phrases: tuple[str, ...]
    posting_hours: tuple[int, ...] | None = None      # None: the settings' POSTING_HOURS
    plan_posts_per_day: int | None = None
    posts_per_day_cap: int | None = None
    posts_per_hour_cap: int | None = None
    replies_enabled: bool = True
    replies_per_day: int | None = None
    reply_searches: Mapping[str, str] = field(default_factory=dict)
    language_pack: LanguagePack | None = None          # None for "en": the built-in English pack
    source: str = field(default="<dict>", compare=False)  # where it was read from, for messages
    _vocab: Vocabulary | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """The content hash (canonical JSON of ``to_dict``): the same profile, however formatted, same hash."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise ValueError(f"unknown topic: {name!r} (account {self.id!r} has {', '.join(self.topic_names)})")

    def vocabulary(self) -> Vocabulary:
        """The ``core.vocab.Vocabulary`` of this niche (topics, keywords, hashtags, hooks, detection)."""
        if self._vocab is None:  # built once: compiling the keyword patterns is not free
            object.__setattr__(self, "_vocab", _vocabulary(self))
        return self._vocab

    def reply_query(self, topic: str) -> str:
        """The X search query that finds conversations about ``topic`` (default: its first three keywords)."""
        if topic in self.reply_searches:
            return self.reply_searches[topic]
        return " OR ".join(self.topic(topic).keywords[:3])

    def settings_overrides(self) -> dict[str, Any]:
        """The settings this profile sets for its account (``Settings.replace(**…)``); keys it leaves
        out keep the environment's value."""
        out: dict[str, Any] = {"timezone": self.timezone, "banned_phrases": self.banned_phrases}
        for key in ("posting_hours", "plan_posts_per_day", "posts_per_day_cap", "posts_per_hour_cap"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if not self.replies_enabled:
            out["plan_replies_per_day"] = 0
        elif self.replies_per_day is not None:
            out["plan_replies_per_day"] = self.replies_per_day
        return out

    def to_dict(self) -> dict[str, Any]:
        """The profile as the TOML it came from would parse (``parse_profile(p.to_dict())`` == p)."""
        d: dict[str, Any] = {"id": self.id, "handle": self.handle, "display_name": self.display_name,
                             "language": self.language, "timezone": self.timezone, "hooks": list(self.hooks),
                             "banned_phrases": list(self.banned_phrases),
                             "voice": {"persona": self.voice.persona, "style": self.voice.style,
                                       "rules": list(self.voice.rules)}}
        posting = {k: v for k, v in (("hours", list(self.posting_hours) if self.posting_hours else None),
                                     ("posts_per_day", self.plan_posts_per_day),
                                     ("max_posts_per_day", self.posts_per_day_cap),
                                     ("max_posts_per_hour", self.posts_per_hour_cap)) if v is not None}
        if posting:
            d["posting"] = posting
        replies: dict[str, Any] = {"enabled": self.replies_enabled}
        if self.replies_per_day is not None:
            replies["per_day"] = self.replies_per_day
        if self.reply_searches:
            replies["searches"] = dict(self.reply_searches)
        d["replies"] = replies
        if self.language_pack is not None:
            p = self.language_pack
            pack = {"hook_rules": dict(p.hook_rules), "openers": {k: list(v) for k, v in p.openers.items()},
                    "closers": list(p.closers), "reply_closers": list(p.reply_closers),
                    "question_followups": list(p.question_followups),
                    "hook_instructions": dict(p.hook_instructions), "reader_questions": list(p.reader_questions)}
            if p.cta_statement_openers:
                pack["cta_statement_openers"] = list(p.cta_statement_openers)
            d["language_pack"] = pack
        d["topics"] = [{"name": t.name, "keywords": list(t.keywords), "hashtag": t.hashtag, "facts": list(t.facts),
                        "tips": list(t.tips), "claims": list(t.claims)} for t in self.topics]
        return d


def _vocabulary(p: AccountProfile) -> Vocabulary:
    hooks = tuple(h for h in HOOK_PATTERNS if h in p.hooks)
    if p.language_pack is None:
        rules, questions = vocab.DEFAULT.hook_rules, vocab.DEFAULT.reader_questions
    else:
        rules = tuple((h, re.compile(p.language_pack.hook_rules[h], re.I)) for h in DETECTED_HOOKS
                      if h in p.language_pack.hook_rules)
        questions = p.language_pack.reader_questions
    return Vocabulary(topics=p.topic_names, topic_keywords={t.name: t.keywords for t in p.topics},
                      topic_hashtags={t.name: t.hashtag for t in p.topics}, hooks=hooks, hook_rules=rules,
                      reader_questions=questions)


# ----------------------------------------------------------------------------- parsing

class _Reader:
    """Reads one table of the profile, naming ``source`` and the key path in every error."""

    def __init__(self, source: str, data: Any, path: str = ""):
        self.source, self.path = source, path
        if not isinstance(data, dict):
            self.fail(path or "the profile", data, "is not a table (write it as [section] or key = {…})")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, key: str, value: Any, fix: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ProfileError(f"{self.source}: {key} = {shown} {fix}")

    def missing(self, name: str, fix: str) -> None:
        raise ProfileError(f"{self.source}: {self.key(name)} is missing ({fix})")

    def only(self, allowed: tuple[str, ...]) -> None:
        for k in self.data:
            if k not in allowed:
                raise ProfileError(f"{self.source}: unknown key {self.key(k)!r} (expected one of "
                                   f"{', '.join(allowed)}; check the spelling)")

    def text(self, name: str, *, required: bool = True, default: str | None = None, pattern: re.Pattern | None = None,
             fix: str = "") -> str | None:
        if name not in self.data:
            if required:
                self.missing(name, fix or "give a text value")
            return default
        v = self.data[name]
        if not isinstance(v, str) or not v.strip():
            self.fail(self.key(name), v, f"is not a non-empty text ({fix or 'give a text value'})")
        if pattern is not None and not pattern.match(v):
            self.fail(self.key(name), v, f"is not valid ({fix})")
        return v.strip()

    def texts(self, name: str, *, required: bool = True, min_items: int = 1, fix: str = "") -> tuple[str, ...]:
        if name not in self.data:
            if required:
                self.missing(name, fix or f"give a list of at least {min_items} text(s)")
            return ()
        v = self.data[name]
        if not isinstance(v, list):
            self.fail(self.key(name), v, f"is not a list (write {name} = [\"…\", \"…\"])")
        if len(v) < min_items:
            raise ProfileError(f"{self.source}: {self.key(name)} is empty (give at least {min_items} "
                               f"{fix or 'item(s)'})" if not v else
                               f"{self.source}: {self.key(name)} has {len(v)} item(s) (give at least {min_items} "
                               f"{fix or 'item(s)'})")
        for i, item in enumerate(v):
            if not isinstance(item, str) or not item.strip():
                self.fail(f"{self.key(name)}[{i}]", item, "is not a non-empty text")
        return tuple(item.strip() for item in v)

    def integer(self, name: str, lo: int, hi: int) -> int | None:
        if name not in self.data:
            return None
        v = self.data[name]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(self.key(name), v, f"is not a whole number from {lo} to {hi}")
        return v

    def table(self, name: str, *, required: bool = True) -> "_Reader | None":
        if name not in self.data:
            if required:
                self.missing(name, f"add a [{self.key(name)}] table")
            return None
        return _Reader(self.source, self.data[name], self.key(name))


_TOP_KEYS = ("id", "handle", "display_name", "language", "timezone", "hooks", "banned_phrases", "voice", "posting",
             "replies", "topics", "language_pack")


def parse_profile(data: Mapping[str, Any], source: str = "<profile>") -> AccountProfile:
    """Validate ``data`` (a parsed TOML document) into an ``AccountProfile``; ``source`` names it in errors."""
    r = _Reader(source, dict(data))
    r.only(_TOP_KEYS)
    pid = r.text("id", pattern=_ID_RE, fix="lower-case letters, digits, '-' or '_', at most 63, e.g. \"cooking\"")
    handle = r.text("handle", pattern=HANDLE_RE, fix="an X handle without '@': 1-15 letters, digits or '_'")
    display = r.text("display_name")
    language = r.text("language", pattern=_LANGUAGE_RE, fix="a language code such as \"en\" or \"es\"")
    tz = r.text("timezone", fix="an IANA time zone such as \"Europe/London\"")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail("timezone", tz, "is not a known time zone (give an IANA name such as \"Europe/London\" or \"UTC\")")

    hooks = r.texts("hooks", fix="hook pattern(s), always including \"plain\"")
    for i, h in enumerate(hooks):
        if h not in HOOK_PATTERNS:
            r.fail(f"hooks[{i}]", h, f"is not a hook pattern (expected some of {', '.join(HOOK_PATTERNS)})")
    if len(set(hooks)) != len(hooks):
        r.fail("hooks", list(hooks), "repeats a hook pattern (list each once)")
    if "plain" not in hooks:
        r.fail("hooks", list(hooks), "lacks \"plain\" (the fallback every post can take; add it)")
    banned = r.texts("banned_phrases", required=False, min_items=0)
    banned = tuple(b.lower() for b in banned)

    v = r.table("voice")
    v.only(("persona", "style", "rules"))
    voice = Voice(persona=v.text("persona", fix="who writes, e.g. \"You write posts for an X account about …\""),
                  style=v.text("style", fix="how it sounds, e.g. \"warm, practical, no hype\""),
                  rules=v.texts("rules", required=False, min_items=0))

    topics = _topics(r)
    names = tuple(t.name for t in topics)

    posting = r.table("posting", required=False)
    hours = None
    ppd = cap_day = cap_hour = None
    if posting is not None:
        posting.only(("hours", "posts_per_day", "max_posts_per_day", "max_posts_per_hour"))
        if "hours" in posting.data:
            raw = posting.data["hours"]
            if not isinstance(raw, list) or not raw:
                posting.fail("posting.hours", raw, "is not a non-empty list of local hours (e.g. [8, 12, 17])")
            for i, h in enumerate(raw):
                if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= 23:
                    posting.fail(f"posting.hours[{i}]", h, "is not an hour from 0 to 23")
            if len(set(raw)) != len(raw):
                posting.fail("posting.hours", raw, "repeats an hour (list each once)")
            hours = tuple(sorted(raw))
        ppd = posting.integer("posts_per_day", 0, 48)
        cap_day = posting.integer("max_posts_per_day", 0, 100)
        cap_hour = posting.integer("max_posts_per_hour", 0, 100)
        if ppd is not None and cap_day is not None and ppd > cap_day:
            posting.fail("posting.posts_per_day", ppd, f"is above posting.max_posts_per_day = {cap_day} "
                         "(plan at most as many posts as may go out)")

    replies = r.table("replies", required=False)
    enabled, per_day, searches = True, None, {}
    if replies is not None:
        replies.only(("enabled", "per_day", "searches"))
        if "enabled" in replies.data:
            enabled = replies.data["enabled"]
            if not isinstance(enabled, bool):
                replies.fail("replies.enabled", enabled, "is not true or false")
        per_day = replies.integer("per_day", 0, 48)
        s = replies.table("searches", required=False)
        if s is not None:
            for topic, query in s.data.items():
                if topic not in names:
                    raise ProfileError(f"{source}: unknown key 'replies.searches.{topic}' (expected a topic: "
                                       f"{', '.join(names)})")
                searches[topic] = s.text(topic, fix="an X search query, e.g. \"sourdough OR bread\"")

    pack = None
    pack_table = r.table("language_pack", required=False)
    if language == "en" and pack_table is not None:
        r.fail("language_pack", "{…}", "is for languages other than \"en\" (English is built in; remove the table)")
    if language != "en":
        if pack_table is None:
            raise ProfileError(f"{source}: language = {language!r} needs a [language_pack] table (hook openers, "
                               "detection rules, closers: English is the only built-in language)")
        pack = _language_pack(pack_table, hooks)

    return AccountProfile(id=pid, handle=handle, display_name=display, language=language, timezone=tz, topics=topics,
                          voice=voice, hooks=tuple(h for h in HOOK_PATTERNS if h in hooks), banned_phrases=banned,
                          posting_hours=hours, plan_posts_per_day=ppd, posts_per_day_cap=cap_day,
                          posts_per_hour_cap=cap_hour, replies_enabled=enabled, replies_per_day=per_day,
                          reply_searches=searches, language_pack=pack, source=source)


def _topics(r: _Reader) -> tuple[Topic, ...]:
    raw = r.data.get("topics")
    if raw is None:
        r.missing("topics", "add at least one [[topics]] table with name, keywords and hashtag")
    if not isinstance(raw, list) or not raw:
        r.fail("topics", raw, "is not a non-empty list of [[topics]] tables")
    topics: list[Topic] = []
    seen_kw: dict[str, str] = {}
    for i, t in enumerate(raw):
        tr = _Reader(r.source, t, f"topics[{i}]")
        tr.only(("name", "keywords", "hashtag", "facts", "tips", "claims"))
        name = tr.text("name", pattern=_ID_RE, fix="lower-case letters, digits, '-' or '_', e.g. \"baking\"")
        if any(name == x.name for x in topics):
            tr.fail(f"topics[{i}].name", name, "repeats an earlier topic (give each topic a new name)")
        keywords = tr.texts("keywords", fix="keyword")
        for j, k in enumerate(keywords):
            if k != k.lower():
                tr.fail(f"topics[{i}].keywords[{j}]", k, f"is not lower case (write {k.lower()!r})")
            if k in seen_kw:
                tr.fail(f"topics[{i}].keywords[{j}]", k, f"is also a keyword of topic {seen_kw[k]!r} "
                        "(a keyword must point at one topic)")
            seen_kw[k] = name
        hashtag = tr.text("hashtag", pattern=_HASHTAG_RE, fix="a hashtag such as \"#Baking\"")
        topics.append(Topic(name=name, keywords=keywords, hashtag=hashtag,
                            facts=tr.texts("facts", fix="fact (statements the templates and the LLM draw on)"),
                            tips=tr.texts("tips", fix="tip (imperatives, for call-to-action posts)"),
                            claims=tr.texts("claims", fix="claim (contrarian statements)")))
    return tuple(topics)


def _language_pack(p: _Reader, hooks: tuple[str, ...]) -> LanguagePack:
    p.only(("hook_rules", "openers", "closers", "reply_closers", "question_followups", "hook_instructions",
            "reader_questions", "cta_statement_openers"))
    rules_t = p.table("hook_rules")
    rules: dict[str, str] = {}
    for h, pattern in rules_t.data.items():
        if h not in DETECTED_HOOKS:
            raise ProfileError(f"{p.source}: unknown key '{rules_t.key(h)}' (expected some of {', '.join(DETECTED_HOOKS)})")
        rules[h] = rules_t.text(h, fix="a regular expression matched at the start of the first line")
        try:
            re.compile(rules[h])
        except re.error as exc:
            rules_t.fail(rules_t.key(h), pattern, f"is not a regular expression ({exc})")
    openers_t = p.table("openers")
    openers: dict[str, tuple[str, ...]] = {}
    for h in openers_t.data:
        if h not in hooks:
            raise ProfileError(f"{p.source}: unknown key '{openers_t.key(h)}' (openers are for the allowed hooks: "
                               f"{', '.join(hooks)})")
    instr_t = p.table("hook_instructions")
    instructions: dict[str, str] = {}
    for h in hooks:
        if h != "plain" and h not in rules:
            rules_t.missing(h, f"allowed hook {h!r} needs a detection rule")
        openers[h] = openers_t.texts(h, fix=f"opener(s) for hook {h!r} with {{S}} or {{c}}")
        instructions[h] = instr_t.text(h, fix=f"the LLM instruction for hook {h!r}")
        for j, o in enumerate(openers[h]):
            if "{S}" not in o and "{c}" not in o:
                openers_t.fail(f"{openers_t.key(h)}[{j}]", o, "has neither {S} nor {c} (where the body goes)")
    closers = p.data.get("closers", [""])  # "" is a valid closer: the post ends with its body
    if not isinstance(closers, list) or not all(isinstance(c, str) for c in closers):
        p.fail("language_pack.closers", closers, "is not a list of texts (\"\" for no closer)")
    return LanguagePack(hook_rules=rules, openers=openers, closers=tuple(c.strip() for c in closers) or ("",),
                        reply_closers=p.texts("reply_closers"), question_followups=p.texts("question_followups"),
                        hook_instructions=instructions, reader_questions=p.texts("reader_questions"),
                        cta_statement_openers=p.texts("cta_statement_openers", required=False, min_items=0))


def load_profile(path: str | Path) -> AccountProfile:
    """Read and validate a profile TOML file; errors name the file (as given)."""
    p = Path(path)
    if not p.is_file():
        raise ProfileError(f"{path}: no such file (pass a profile TOML such as accounts/cooking.toml)")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:  # a binary file: a ProfileError names it, where the codec's error would not
        raise ProfileError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); pass a profile TOML "
                           "such as accounts/cooking.toml") from None
    return parse_profile(data, str(path))


@lru_cache(maxsize=1)
def default_profile() -> AccountProfile:
    """The built-in niche (``accounts/default.toml``): what an account without a stored profile runs."""
    return load_profile(DEFAULT_PROFILE_PATH)


def profile_changes(old: AccountProfile | None, new: AccountProfile) -> list[str]:
    """What storing ``new`` over ``old`` changes, one short line per key (topics: added, removed, changed)."""
    if old is None:
        return [f"new account {new.id!r}: {len(new.topics)} topics ({', '.join(new.topic_names)})"]
    a, b = old.to_dict(), new.to_dict()
    out: list[str] = []
    out += _table_changes("", {k: v for k, v in a.items() if k != "topics"},
                          {k: v for k, v in b.items() if k != "topics"})
    old_t, new_t = {t["name"]: t for t in a["topics"]}, {t["name"]: t for t in b["topics"]}
    for name in new_t:
        if name not in old_t:
            out.append(f"topics: added {name!r}")
        elif old_t[name] != new_t[name]:
            fields = [k for k in new_t[name] if new_t[name][k] != old_t[name].get(k)]
            out.append(f"topics: {name!r} changed ({', '.join(fields)})")
    out += [f"topics: removed {name!r}" for name in old_t if name not in new_t]
    if [t for t in old_t if t in new_t] != [t for t in new_t if t in old_t]:
        out.append(f"topics: order {', '.join(old_t)} -> {', '.join(new_t)}")
    return out


def _table_changes(prefix: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Changed keys between two tables, down to the innermost table that differs ('replies.searches.budget')."""
    out: list[str] = []
    for key in b:
        if key not in a:
            out.append(f"{prefix}{key}: added {_short(b[key])}")
        elif a[key] != b[key]:
            if isinstance(a[key], dict) and isinstance(b[key], dict):
                out += _table_changes(f"{prefix}{key}.", a[key], b[key])
            else:
                out.append(f"{prefix}{key}: {_short(a[key])} -> {_short(b[key])}")
    out += [f"{prefix}{key}: removed" for key in a if key not in b]
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- writing TOML

def profile_to_toml(profile: AccountProfile) -> str:
    """The profile as a TOML document that ``load_profile`` reads back to the same profile (`xbot account show`)."""
    d = profile.to_dict()
    out = [f"# account {profile.id!r}: sha256 {profile.sha256[:12]}"]
    tables = {k: v for k, v in d.items() if isinstance(v, dict)}
    out += [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in tables and k != "topics"]
    for name, table in tables.items():
        out += _toml_table(name, table)
    for t in d["topics"]:
        out += ["", "[[topics]]"] + [f"{k} = {_toml_value(v)}" for k, v in t.items()]
    return "\n".join(out) + "\n"


def _toml_table(name: str, table: dict) -> list[str]:
    lines = ["", f"[{name}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()
                                 if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            lines += _toml_table(f"{name}.{_toml_key(k)}", v)
    return lines


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        items = [_toml_value(x) for x in v]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) <= 100:
            return one_line
        return "[\n" + "".join(f"    {x},\n" for x in items) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
