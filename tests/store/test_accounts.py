"""Account profiles in Postgres: stored, read back equal, listed, updated with what changed; a context
reads its account's stored profile (and the built-in one when there is none)."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

from xbotlib.clients.generation import TemplateGenerator
from xbotlib.core import vocab
from xbotlib.core.profile import default_profile, load_profile
from xbotlib.jobs.context import build_context
from xbotlib.store import accounts
from xbotlib.store.queue import account_created_at, ensure_account

COOKING = load_profile("accounts/cooking.toml")


def test_round_trip_list_and_update(db, clock):
    with db.connection() as conn:
        assert accounts.load_profile(conn, "cooking") is None and accounts.list_account_ids(conn) == []
        saved = accounts.save_profile(conn, COOKING, clock.now())
        assert saved.created and saved.changes[0].startswith("new account 'cooking'")
        assert accounts.load_profile(conn, "cooking") == COOKING
        again = accounts.save_profile(conn, COOKING, clock.now() + timedelta(hours=1))
        assert again.unchanged
        fewer_hours = dataclasses.replace(COOKING, posting_hours=(8, 19))
        update = accounts.save_profile(conn, fewer_hours, clock.now() + timedelta(hours=2), source="edited.toml")
        assert not update.created and update.changes == ["posting.hours: [8, 12, 17, 19, 21] -> [8, 19]"]
        assert accounts.load_profile(conn, "cooking").posting_hours == (8, 19)
        accounts.save_profile(conn, default_profile(), clock.now())
        ensure_account(conn, "legacy", clock.now())  # an account from before profiles: served on the built-in one
        assert accounts.list_account_ids(conn) == ["cooking", "default", "legacy"]
        rows = {r["account_id"]: r for r in accounts.list_profiles(conn)}
        assert sorted(rows) == ["cooking", "default"]  # only stored profiles are listed
        assert rows["cooking"]["topics"] == ["baking", "weeknight", "fermentation", "knife_skills", "budget"]
        assert rows["cooking"]["profile_source"] == "edited.toml" and rows["cooking"]["timezone"] == "Europe/London"
        assert rows["cooking"]["updated_at"] == clock.now() + timedelta(hours=2)  # the unchanged save kept it
        assert accounts.load_profile(conn, "legacy") is None


def test_an_existing_account_keeps_its_created_at(db, clock):
    with db.connection() as conn:
        ensure_account(conn, "cooking", clock.now() - timedelta(days=30))
        accounts.save_profile(conn, COOKING, clock.now())
        assert account_created_at(conn, "cooking") == clock.now() - timedelta(days=30)  # exploration schedule kept


def test_a_context_reads_its_accounts_profile(settings, db, clock):
    with db.connection() as conn:
        accounts.save_profile(conn, COOKING, clock.now())
    ctx = build_context(settings.replace(account_id="cooking"), db, clock, seed=1)
    assert ctx.profile == COOKING and ctx.vocabulary.topics == COOKING.topic_names
    assert ctx.settings.posting_hours == (8, 12, 17, 19, 21) and ctx.settings.timezone == "Europe/London"
    assert ctx.settings.banned_phrases == COOKING.banned_phrases and ctx.settings.posts_per_day_cap == 6
    assert isinstance(ctx.generator, TemplateGenerator) and ctx.generator.profile == COOKING

    plain = build_context(settings.replace(account_id="acct1", posting_hours=(6, 22)), db, clock, seed=1)
    assert plain.profile == default_profile() and plain.vocabulary == vocab.DEFAULT
    assert plain.settings.posting_hours == (6, 22)  # no stored profile: the environment's settings stand
