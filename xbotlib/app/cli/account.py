"""``xbot account add FILE | list | show ID | check FILE``: account profiles, one TOML file per account.

Wire it in with ``register(sub)`` where ``sub`` is the argparse subparsers object of the ``xbot``
command.
"""
from __future__ import annotations

import argparse

from xbotlib.app.cli.errors import CliError
from xbotlib.clock import SystemClock
from xbotlib.config import load_settings

ACCOUNT_HELP = """\
A profile is one reviewable TOML file per account (see accounts/default.toml, accounts/cooking.toml
and docs/ACCOUNTS.md): handle, language, time zone, topics with their keywords, hashtag and the
facts / tips / claims posts are made of, the voice of the LLM prompt, banned phrases, posting hours
and caps, reply searches and the hooks allowed. The jobs read the stored profile of their account
(XBOT_ACCOUNT_ID); an account without one runs the built-in accounts/default.toml with the
environment's settings. A stored profile's hours, caps, time zone and banned phrases win over the
environment's.

examples:
  xbot account check accounts/cooking.toml     validate offline (no database), template rules included
  xbot account add accounts/cooking.toml       validate, store (or update) and print what changed
  xbot account list
  xbot account show cooking > cooking.toml     the stored profile, as TOML"""


def register(sub) -> None:
    """Add ``account add|list|show|check`` to ``sub``."""
    p = sub.add_parser("account", help="account profiles: add, list, show, check",
                       description="Account profiles: each account's niche, voice, hours and caps, stored in Postgres.",
                       epilog=ACCOUNT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="account_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="validate a profile file and store it (insert or update)",
                             description="Validates FILE like `check` (template rules included), then stores it "
                                         "for the account it names (its `id`) and prints what changed. Running "
                                         "jobs read the new profile when they next build their context.")
    add.add_argument("file", metavar="FILE", help="profile TOML, e.g. accounts/cooking.toml")
    add.set_defaults(func=cmd_account_add)
    ls = actions.add_parser("list", help="accounts with a stored profile")
    ls.set_defaults(func=cmd_account_list)
    show = actions.add_parser("show", help="an account's stored profile, as TOML")
    show.add_argument("account_id", metavar="ID", help="the account id (its profile's `id`)")
    show.set_defaults(func=cmd_account_show)
    check = actions.add_parser("check", help="validate a profile file without a database",
                               description="Parses and validates FILE: every key and value, unknown keys, and "
                                           "the template rules (each fact / tip / claim has keywords of its own "
                                           "topic only and is one sentence; openers and closers name no topic; no "
                                           "banned phrase). Exit status 0 when the profile is usable, 2 when not.")
    check.add_argument("file", metavar="FILE", help="profile TOML, e.g. accounts/cooking.toml")
    check.set_defaults(func=cmd_account_check)


def checked_profile(path: str):
    """The validated profile in ``path`` (fields and template rules), or a CliError listing every problem."""
    # imported here for start-up time: the generation package loads the OpenAI SDK
    from xbotlib.clients.generation.templates import template_problems
    from xbotlib.core.profile import ProfileError, load_profile  # start-up time, as above

    try:
        profile = load_profile(path)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    problems = template_problems(profile)
    if problems:
        raise CliError(f"{path}: {len(problems)} template rule problem(s):\n  " + "\n  ".join(problems))
    return profile


def cmd_account_check(args: argparse.Namespace) -> int:
    profile = checked_profile(args.file)
    v = profile.vocabulary()
    print(f"{args.file}: ok — account {profile.id!r} (@{profile.handle}, {profile.language}, {profile.timezone})")
    print(f"  topics: {', '.join(f'{t.name} ({len(t.facts)} facts, {len(t.tips)} tips, {len(t.claims)} claims)' for t in profile.topics)}")
    print(f"  hooks: {', '.join(v.hooks)}")
    hours = ", ".join(map(str, profile.posting_hours)) if profile.posting_hours else "POSTING_HOURS (environment)"
    print(f"  posting hours: {hours}; replies {'on' if profile.replies_enabled else 'off'}")
    return 0


def _in_store(read):
    """``read(conn)`` on the workspace's database, brought to the current schema first (the profile columns
    are part of it)."""
    # imported here for start-up time: psycopg and the store are slow to import
    from xbotlib.store import migrate
    from xbotlib.store.db import Database  # start-up time, as above

    with Database.open(load_settings()) as db:
        migrate.up(db)
        with db.connection() as conn:
            return read(conn)


def cmd_account_add(args: argparse.Namespace) -> int:
    profile = checked_profile(args.file)
    # imported here for start-up time: psycopg and the store are slow to import
    from xbotlib.store import accounts

    saved = _in_store(lambda conn: accounts.save_profile(conn, profile, SystemClock().now(), source=args.file))
    if saved.created:
        print(f"account {profile.id!r} added from {args.file}")
    elif saved.unchanged:
        print(f"account {profile.id!r}: unchanged (the stored profile is already {args.file})")
        return 0
    else:
        print(f"account {profile.id!r} updated from {args.file}:")
    for line in saved.changes:
        print(f"  {line}")
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    # imported here for start-up time: psycopg and the store are slow to import
    from xbotlib.store import accounts

    rows = _in_store(accounts.list_profiles)
    if not rows:
        print("no stored profiles (accounts run the built-in accounts/default.toml); add one: "
              "xbot account add accounts/cooking.toml")
        return 0
    header = ("ID", "HANDLE", "LANG", "TIMEZONE", "TOPICS", "SOURCE", "UPDATED")
    table = [header] + [(r["account_id"], "@" + (r["handle"] or ""), r["language"] or "", r["timezone"],
                         ",".join(r["topics"] or []), r["profile_source"] or "",
                         r["updated_at"].strftime("%Y-%m-%d %H:%M") if r["updated_at"] else "") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_account_show(args: argparse.Namespace) -> int:
    # imported here for start-up time: psycopg and the store are slow to import
    from xbotlib.core.profile import profile_to_toml
    from xbotlib.store import accounts  # start-up time, as above

    profile, known = _in_store(lambda conn: (
        accounts.load_profile(conn, args.account_id),
        [r["account_id"] for r in accounts.list_profiles(conn)]))
    if profile is None:
        raise CliError(f"no stored profile for account {args.account_id!r} (stored: "
                       f"{', '.join(known) or 'none'}; add one with `xbot account add FILE`)")
    print(profile_to_toml(profile), end="")
    return 0
