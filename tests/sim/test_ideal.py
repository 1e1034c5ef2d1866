"""The noise-aware ideal obeys the policies' rules, reads no effect value, and learns from sandbox outcomes."""
from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from xbotlib.core import vocab
from xbotlib.core.growth_model import PostOutcome
from xbotlib.core.policies import PlanState, allowed_hooks
from xbotlib.sim.audience import draw_totals
from xbotlib.sim.ideal import IdealPolicy, Knowledge, gamma_nodes, make_ideal, posterior
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.policies import POLICY_NAMES, make_policy
from xbotlib.sim.scenario import SCENARIO_DIR, load_scenario, parse_scenario

HOURS = list(vocab.DEFAULT_POSTING_HOURS)


def state(outcomes=(), day: float = 0.0) -> PlanState:
    return PlanState(content_arms={}, timing_arms={}, account_age_days=day, outcomes=list(outcomes))


def sandbox_outcomes(scenario, n: int, seed: int = 0) -> list[PostOutcome]:
    """``n`` original posts spread evenly over hooks, hours and topics, counts drawn by the sandbox's own
    noise (``draw_totals``) around its own expectations (``Oracle.expected``)."""
    oracle, rng = Oracle(scenario), np.random.default_rng(seed)
    out = []
    for i in range(n):
        hook, hour = vocab.HOOK_PATTERNS[i % 6], HOURS[(i // 6) % 8]
        topic = oracle.topics[(i // 48) % len(oracle.topics)]
        t = draw_totals(oracle.scenario, oracle.expected(hook, hour, topic), rng)
        out.append(PostOutcome(hook, topic, hour, float(t.profile_visits), float(t.follows),
                               float(scenario.account.initial_followers)))
    return out


def revalued(raw: dict) -> dict:
    """``raw`` with every effect value changed: hooks, topics, hour curves and experiments (the values the
    ideal must learn), the noise and reach constants left alone."""
    raw = {**raw, "hours": {"reach": list(reversed(raw["hours"]["reach"])), "quality": [1.0] * 24}}
    raw["hooks"] = {"plain": {"impressions": 1.6, "follow_rate": 1.4}, "did_you_know": {"profile_visits": 0.5}}
    raw["topics"] = {"health": {"impressions": 1.5}, "none": {"profile_visits": 0.7}}
    raw["experiments"] = {"late_evening_slot": {"follow_rate": 0.6}}
    return raw


def test_gamma_nodes_integrate_a_mean_one_gamma():
    for shape in (1.5, 3.0, 8.0):
        x, logw = gamma_nodes(shape)
        w = np.exp(logw)
        assert w.sum() == pytest.approx(1.0, abs=1e-9)
        assert (w * x).sum() == pytest.approx(1.0, abs=1e-9)
        assert (w * x * x).sum() == pytest.approx(1.0 + 1.0 / shape, abs=1e-9)  # the variance is 1/shape
    with pytest.raises(ValueError, match="gamma shape must be > 0"):
        gamma_nodes(0.0)


def test_ideal_is_a_registered_simulation_policy():
    assert "ideal" in POLICY_NAMES
    policy = make_policy("ideal", scenario="evening_contrarian")
    assert isinstance(policy, IdealPolicy) and policy.name == "ideal"
    assert policy.known == Knowledge.of(load_scenario("evening_contrarian"))


def test_it_keeps_to_the_rules_and_its_propensities_are_probabilities():
    outcomes = sandbox_outcomes(load_scenario(None), 60)
    policy = make_ideal(None)
    offered_hooks, offered_hours = ["question", "plain", "cta"], [9, 15, 21]
    for outs in ((), outcomes):
        st = state(outs)
        for seed in range(30):
            c = policy.choose(st, offered_hooks, offered_hours, np.random.default_rng(seed))
            assert c.hook in allowed_hooks(st, offered_hooks) and c.hour in offered_hours
            assert 0.0 < c.hook_propensity <= 1.0 and 0.0 < c.hour_propensity <= 1.0
    with pytest.raises(ValueError, match="no hour offered"):
        policy.choose(state(), offered_hooks, [], np.random.default_rng(0))


def test_it_reads_no_effect_value_of_the_scenario():
    raw = tomllib.loads((SCENARIO_DIR / "default.toml").read_text(encoding="utf-8"))
    world, other = parse_scenario(raw), parse_scenario(revalued(raw))
    assert Oracle(world).best_choice() != Oracle(other).best_choice()  # the two worlds' answers differ
    a, b = make_ideal(world), make_ideal(other)
    outcomes = sandbox_outcomes(world, 48)
    for outs in ((), outcomes):  # the first choice with no outcomes, and a choice after the same outcomes
        choices_a = [a.choose(state(outs), vocab.HOOK_PATTERNS, HOURS, np.random.default_rng(s)) for s in range(40)]
        choices_b = [b.choose(state(outs), vocab.HOOK_PATTERNS, HOURS, np.random.default_rng(s)) for s in range(40)]
        assert choices_a == choices_b
    # with no outcomes the prior treats every hook and hour alike: each about equally likely
    first = a.choose(state(), vocab.HOOK_PATTERNS, HOURS, np.random.default_rng(0))
    assert first.hook_propensity == pytest.approx(1 / 6, abs=0.05)
    assert first.hour_propensity == pytest.approx(1 / 8, abs=0.05)


@pytest.mark.parametrize("name", ["default", "evening_contrarian"])
def test_it_learns_the_best_hook_and_hour_from_sandbox_outcomes(name):
    scenario = load_scenario(name)
    best_hook, best_hour = Oracle(scenario).best_choice()
    policy = make_ideal(scenario)
    st = state(sandbox_outcomes(scenario, 960, seed=3))
    choices = [policy.choose(st, vocab.HOOK_PATTERNS, HOURS, np.random.default_rng(s)) for s in range(200)]
    hooks = [c.hook for c in choices]
    hours = [c.hour for c in choices]
    assert max(set(hooks), key=hooks.count) == best_hook
    assert max(set(hours), key=hours.count) == best_hour
    assert hooks.count(best_hook) > 0.5 * len(choices)
    # with no outcomes it could not know: the best hook then takes about its uniform share
    blind = [policy.choose(state(), vocab.HOOK_PATTERNS, HOURS, np.random.default_rng(s)).hook for s in range(200)]
    assert blind.count(best_hook) < 0.3 * len(blind)


def test_its_posterior_covers_the_true_effects_it_is_correctly_specified():
    """Over independent sandbox data sets, the 90% interval of each hook's effect on log expected profile
    visits (against plain) covers the truth about 90% of the time. The same posterior with a wrong noise
    model (the gamma shocks' shapes at 100, nearly Poisson) claims half the spread and covers about
    half the time (measured: 0.95 against 0.60 here)."""
    scenario = load_scenario(None)
    oracle, noise = Oracle(scenario), Knowledge.of(scenario)
    visits = {h: oracle.expected(h, 11).profile_visits for h in vocab.HOOK_PATTERNS}
    truth = {h: math.log(v / visits["plain"]) for h, v in visits.items() if h != "plain"}
    covered = []
    for seed in range(16):
        post = posterior(sandbox_outcomes(scenario, 480, seed=100 + seed), noise, oracle.topics)
        p, g = post.design.hook_col("plain"), post.visits
        for hook, true in truth.items():
            c = post.design.hook_col(hook)
            sd = math.sqrt(g.cov[c, c] + g.cov[p, p] - 2 * g.cov[c, p])
            covered.append(abs(g.mean[c] - g.mean[p] - true) <= 1.645 * sd)
    assert 0.8 <= np.mean(covered) <= 0.98


def test_it_knows_where_an_interaction_applies_and_learns_its_value():
    """A world where did_you_know, the best hook, is poor at 11:00 only (a hook × hour interaction): the
    ideal is told the interaction's hook and hour, never its multiplier, and learns from sandbox outcomes
    that its hook choice must depend on the hour."""
    raw = tomllib.loads((SCENARIO_DIR / "default.toml").read_text(encoding="utf-8"))
    raw["interactions"] = {"hook_hour": [{"hook": "did_you_know", "hours": [11], "profile_visits": 0.5}]}
    world = parse_scenario(raw)
    oracle = Oracle(world)
    assert oracle.best_choice()[0] == "did_you_know" and oracle.best_choice(hours=[11])[0] != "did_you_know"
    policy = make_ideal(world)
    assert [(s.hook, s.hours) for s in policy.known.interactions] == [("did_you_know", frozenset({11}))]
    st = state(sandbox_outcomes(world, 960, seed=5))
    anywhere = [policy.choose(st, vocab.HOOK_PATTERNS, HOURS, np.random.default_rng(s)) for s in range(100)]
    hooks = [c.hook for c in anywhere]
    assert hooks.count("did_you_know") > 0.5 * len(hooks)
    assert sum((c.hook, c.hour) == ("did_you_know", 11) for c in anywhere) < 0.05 * len(anywhere)
    at_eleven = [policy.choose(st, vocab.HOOK_PATTERNS, [11], np.random.default_rng(s)).hook for s in range(100)]
    assert at_eleven.count("did_you_know") < 0.2 * len(at_eleven)


def test_a_campaign_gives_the_ideal_the_structure_of_the_world_it_runs_in(db):
    """The campaign builds every policy with its own scenario: an ideal built for the default world would learn
    evening_contrarian's outcomes with the wrong noise (the two worlds' gamma shapes differ)."""
    from xbotlib.config import load_settings  # only this test runs a campaign
    from xbotlib.jobs.campaign import CampaignConfig, run_campaign

    run = run_campaign(CampaignConfig(days=1, seed=0, scenario_path="evening_contrarian", policy="ideal",
                                      experiments=False), load_settings(env={}), db)
    evening, default = Knowledge.of(load_scenario("evening_contrarian")), Knowledge.of(load_scenario(None))
    assert evening != default
    assert run.contexts[0].policy.known == evening
