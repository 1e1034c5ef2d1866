"""Content generation: where a post's text comes from.

A package, because the offline templates alone are ~300 lines:

- ``candidates``: ``Candidate`` (one generated post) and the ``ContentGenerator`` protocol the plan
  job asks for posts; no OpenAI SDK.
- ``templates``: ``TemplateGenerator``, offline posts for every hook x topic
  (``generation_source='template'``); no OpenAI SDK.
- ``prompts``: ``build_prompt``, ``parse_posts`` and ``LLMContentGenerator``, posts from the budgeted
  ``xbotlib.clients.llm.LLMClient`` (``generation_source='llm'``).

This module is the entry point: the names above, and ``make_generator``, which picks the LLM when
OPENAI_API_KEY is set and the templates otherwise. Importing the package (or any module in it)
imports the OpenAI SDK through ``LLMClient``; only ``xbotlib.clients.llm`` imports it directly.
"""
from __future__ import annotations

import zlib

from xbotlib.clients.generation.candidates import MAX_POST_CHARS, Candidate, ContentGenerator
from xbotlib.clients.generation.prompts import LLMContentGenerator, build_prompt, parse_posts, system_prompt
from xbotlib.clients.generation.templates import TemplateGenerator, template_problems
from xbotlib.clients.llm import ConnectionPool, LLMClient, SpendLedger
from xbotlib.clock import Clock
from xbotlib.config import Settings
from xbotlib.core.profile import AccountProfile

__all__ = ["MAX_POST_CHARS", "Candidate", "ContentGenerator", "LLMContentGenerator", "TemplateGenerator",
           "build_prompt", "make_generator", "parse_posts", "system_prompt", "template_problems"]


def make_generator(settings: Settings, db: ConnectionPool, clock: Clock, account_id: str, *,
                   ledger: SpendLedger, profile: AccountProfile | None = None) -> ContentGenerator:
    """The content generator for one job tick: LLM when OPENAI_API_KEY is set, else templates.

    Call it once per tick: its LLMClient shares one RetryAllowance across the tick. ``db`` and
    ``ledger`` (``xbotlib.store.db.Database`` and the module ``xbotlib.store.ledger``) are what the
    LLM's budget is kept in. ``profile``: the account's niche (default: the built-in one).
    """
    seed = zlib.crc32(account_id.encode())
    if not settings.openai_api_key:
        return TemplateGenerator(seed, profile)
    llm = LLMClient(settings, db, clock, account_id, ledger=ledger)
    llm.new_tick()
    return LLMContentGenerator(llm, fallback=TemplateGenerator(seed, profile), profile=profile)
