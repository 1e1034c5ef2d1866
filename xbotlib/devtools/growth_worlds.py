"""What a growth-bench campaign runs on, beside its policy and seed: the account profile a shipped scenario was
written for, the hooks and hours that account may choose (and so the fixed rule's arm), and a copy of a scenario
whose sandbox refuses analytics. ``xbotlib.devtools.bench`` runs the campaigns.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from xbotlib.core import vocab
from xbotlib.core.profile import ACCOUNTS_DIR, DEFAULT_PROFILE_PATH, load_profile
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import load_scenario


def scenario_profile(scenario: str | None) -> str | None:
    """The shipped account profile a shipped scenario was written for: ``accounts/<name>.toml`` beside
    ``scenarios/<name>.toml`` (``cooking``: its audience reads the cooking profile's topics, and the built-in
    niche posting to it would measure a mismatch, not a learner). None for the default scenario (the
    built-in profile, which every other scenario runs too) and for any scenario without one."""
    name = Path(load_scenario(scenario).source).stem
    path = ACCOUNTS_DIR / f"{name}.toml"
    return str(path) if path.is_file() and path != DEFAULT_PROFILE_PATH else None


def account_choices(profile_path: str | None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The hooks and posting hours an account on ``profile_path`` may choose (None: the built-in profile's): the
    fixed rule's best (hook, hour) and the best hook a step moves to are chosen among them, not among every hook
    of the scenario (a profile without new_study cannot post the world's best new_study)."""
    if profile_path is None:
        return tuple(vocab.HOOK_PATTERNS), tuple(vocab.DEFAULT_POSTING_HOURS)
    profile = load_profile(profile_path)
    return (tuple(h for h in vocab.HOOK_PATTERNS if h in profile.hooks),   # the tie order of every hook list
            tuple(profile.posting_hours or vocab.DEFAULT_POSTING_HOURS))


def fixed_choice(scenario: str | None, profile_path: str | None) -> tuple[str, int]:
    """The ``fixed`` policy's arm: the scenario's best (hook, hour) in hindsight among those the account on
    ``profile_path`` may choose (``account_choices``)."""
    hooks, hours = account_choices(profile_path)
    return Oracle(load_scenario(scenario)).best_choice(hours=hours, hooks=hooks)


def scenario_without_analytics(scenario: str | None, directory: str | Path) -> str:
    """A copy of ``scenario`` (a shipped name or a path; None: default) in ``directory`` whose sandbox
    refuses ``GET /2/tweets/analytics`` (``[x] analytics = false``, see docs/SCENARIO.md): the world of an
    access level without analytics, where follows come from follower-snapshot attribution."""
    loaded = load_scenario(scenario)
    if not loaded.x.analytics:
        return loaded.source
    text = Path(loaded.source).read_text(encoding="utf-8")
    if "x" in tomllib.loads(text):
        raise ValueError(f"{loaded.source} sets [x] analytics = true: set it to false in the file itself "
                         "instead of using --analytics off")
    if loaded.derived_from is not None:   # a path relative to the original file would not resolve from the copy
        text = re.sub(r"(?m)^derived_from\s*=.*$", lambda _m: f"derived_from = {json.dumps(loaded.derived_from)}", text)
    out = Path(directory) / Path(loaded.source).name
    out.write_text(text.rstrip("\n") + "\n\n# added by `xbot bench growth --analytics off`\n[x]\nanalytics = false\n",
                   encoding="utf-8")
    return str(out)
