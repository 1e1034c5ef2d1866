"""Plan policies: every policy returns an allowed (hook, hour) with the probability it had of choosing it.

The propensity of a choice must be the policy's true probability of that choice: over many draws the
empirical frequency of each arm matches its propensity, and the propensities of the arms sum to 1.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from xbotlib.core import vocab
from xbotlib.core import bandit
from xbotlib.core.bandit import ArmStats
from xbotlib.core import policies as core_policies
from xbotlib.core.policies import FixedPolicy, HeuristicPolicy, PlanChoice, PlanState, RandomPolicy, XbotPolicy
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.policies import POLICY_NAMES, OraclePolicy, make_policy

HOOKS = list(vocab.HOOK_PATTERNS)
HOURS = [7, 9, 11, 13, 15, 17, 19, 21]
DRAWS = 6000


def stats(arm_id: str, pulls: int, mean: float) -> ArmStats:
    return ArmStats(arm_id, pulls=pulls, reward_sum=mean * pulls, reward_sq_sum=mean * mean * pulls, weight_sum=pulls)


def empty_state(age_days: float = 0.0) -> PlanState:
    return PlanState(content_arms={}, timing_arms={}, account_age_days=age_days)


# Content arms with a clear ranking: exploit = did_you_know, moderate = new_study + question,
# aggressive (fewest pulls) = cta; contrarian and plain fall in no group and are never chosen.
RANKED_HOOKS = {
    "did_you_know": stats("did_you_know", 10, 1.0),
    "new_study": stats("new_study", 10, 0.5),
    "question": stats("question", 10, 0.4),
    "contrarian": stats("contrarian", 10, 0.2),
    "plain": stats("plain", 5, 0.0),
    "cta": stats("cta", 2, 0.1),
}
RANKED_HOURS = {str(h): stats(str(h), 10 if h != 21 else 1, {19: 2.0, 9: 1.5, 13: 1.0}.get(h, 0.1)) for h in HOURS}


def draw(policy, state: PlanState, hooks=HOOKS, hours=HOURS, n: int = DRAWS, seed: int = 7):
    """Frequencies and the propensity reported for each chosen hook and hour over ``n`` choices."""
    rng = np.random.default_rng(seed)
    hook_n, hour_n = Counter(), Counter()
    hook_p, hour_p = defaultdict(set), defaultdict(set)
    for _ in range(n):
        c = policy.choose(state, hooks, hours, rng)
        assert isinstance(c, PlanChoice)
        assert c.hook in hooks and c.hour in hours, f"{policy.name} chose outside the allowed arms: {c}"
        assert 0 < c.hook_propensity <= 1 and 0 < c.hour_propensity <= 1, c
        hook_n[c.hook] += 1
        hour_n[c.hour] += 1
        hook_p[c.hook].add(round(c.hook_propensity, 12))
        hour_p[c.hour].add(round(c.hour_propensity, 12))
    return hook_n, hour_n, hook_p, hour_p


def assert_propensities_are_probabilities(counts: Counter, props: dict, n: int) -> None:
    """Each arm reports one propensity, they sum to 1 over arms, and each matches the arm's frequency."""
    for arm, ps in props.items():
        assert len(ps) == 1, f"arm {arm!r} reported different propensities in the same state: {ps}"
    p = {arm: next(iter(ps)) for arm, ps in props.items()}
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-9)
    for arm, prop in p.items():
        sd = np.sqrt(prop * (1 - prop) / n)
        assert abs(counts[arm] / n - prop) <= 4.5 * sd + 1e-9, (arm, counts[arm] / n, prop)


def test_random_policy_is_uniform_with_uniform_propensities():
    hook_n, hour_n, hook_p, hour_p = draw(RandomPolicy(), empty_state())
    assert set(hook_n) == set(HOOKS) and set(hour_n) == set(HOURS)
    assert all(ps == {round(1 / len(HOOKS), 12)} for ps in hook_p.values())
    assert_propensities_are_probabilities(hook_n, hook_p, DRAWS)
    assert_propensities_are_probabilities(hour_n, hour_p, DRAWS)


def test_heuristic_mix_is_60_25_15_and_propensities_match():
    state = PlanState(content_arms=RANKED_HOOKS, timing_arms=RANKED_HOURS, account_age_days=30)
    hook_n, hour_n, hook_p, hour_p = draw(HeuristicPolicy(), state)
    # exploit 60%, moderate 25% split over the next best two, aggressive 15% on the least tried
    expected_hooks = {"did_you_know": 0.60, "new_study": 0.125, "question": 0.125, "cta": 0.15}
    assert set(hook_n) == set(expected_hooks), "arms outside the three groups must never be chosen"
    assert {a: next(iter(p)) for a, p in hook_p.items()} == pytest.approx(expected_hooks)
    assert_propensities_are_probabilities(hook_n, hook_p, DRAWS)
    expected_hours = {19: 0.60, 9: 0.125, 13: 0.125, 21: 0.15}
    assert set(hour_n) == set(expected_hours)
    assert {h: next(iter(p)) for h, p in hour_p.items()} == pytest.approx(expected_hours)
    assert_propensities_are_probabilities(hour_n, hour_p, DRAWS)


def test_heuristic_overlapping_groups_add_their_shares():
    # no statistics at all: every arm is the least tried, so the aggressive share spreads over all of them
    # and the exploit/moderate arms (the first in order) get their share on top
    hook_n, _, hook_p, _ = draw(HeuristicPolicy(), empty_state(), n=3000)
    p = {a: next(iter(ps)) for a, ps in hook_p.items()}
    assert p[HOOKS[0]] == pytest.approx(0.60 + 0.15 / len(HOOKS))
    assert p[HOOKS[1]] == pytest.approx(0.125 + 0.15 / len(HOOKS))
    assert_propensities_are_probabilities(hook_n, hook_p, 3000)


def test_fixed_policy_sticks_to_its_arm_and_says_so():
    hook_n, hour_n, hook_p, hour_p = draw(FixedPolicy("question", 19), empty_state(), n=50)
    assert hook_n == Counter({"question": 50}) and hour_n == Counter({19: 50})
    assert hook_p == {"question": {1.0}} and hour_p == {19: {1.0}}


def test_fixed_policy_falls_back_honestly_when_its_arm_is_not_allowed():
    # rotation may forbid the fixed hook: the fallback is a uniform draw, and its propensity must say so
    allowed = [h for h in HOOKS if h != "question"]
    hook_n, hour_n, hook_p, hour_p = draw(FixedPolicy("question", 20), empty_state(), hooks=allowed, n=3000)
    assert set(hook_n) == set(allowed)
    assert_propensities_are_probabilities(hook_n, hook_p, 3000)
    # hour 20 is not a posting hour: the nearest allowed one (19, then 21 on a tie) deterministically
    assert hour_n == Counter({19: 3000}) and hour_p == {19: {1.0}}


def test_oracle_policy_picks_the_best_allowed_arm():
    oracle = Oracle()
    best = max(((h, t) for h in HOOKS for t in HOURS), key=lambda ht: oracle.expected_follows(*ht))
    hook_n, hour_n, hook_p, hour_p = draw(OraclePolicy(oracle), empty_state(), n=20)
    assert hook_n == Counter({best[0]: 20}) and hour_n == Counter({best[1]: 20})
    assert hook_p == {best[0]: {1.0}} and hour_p == {best[1]: {1.0}}
    # with the best hook forbidden it picks the best of the rest
    rest = [h for h in HOOKS if h != best[0]]
    c = OraclePolicy(oracle).choose(empty_state(), rest, HOURS, np.random.default_rng(0))
    assert c.hook in rest
    assert oracle.expected_follows(c.hook, c.hour) == max(oracle.expected_follows(h, t) for h in rest for t in HOURS)


def test_xbot_policy_returns_valid_choices_with_its_propensities():
    state = PlanState(content_arms=RANKED_HOOKS, timing_arms=RANKED_HOURS, account_age_days=3)
    hook_n, hour_n, _, _ = draw(XbotPolicy(), state, n=200)
    assert sum(hook_n.values()) == 200
    assert set(hour_n) <= set(HOURS)
    # only the allowed hooks, even when the statistics favour a forbidden one
    allowed = ["plain", "cta"]
    for seed in range(20):
        c = XbotPolicy().choose(state, allowed, [9, 13], np.random.default_rng(seed))
        assert c.hook in allowed and c.hour in (9, 13)
        assert 0 < c.hook_propensity <= 1 and 0 < c.hour_propensity <= 1


def test_same_seed_same_choices():
    state = PlanState(content_arms=RANKED_HOOKS, timing_arms=RANKED_HOURS, account_age_days=3)
    for name in ("xbot", "random", "heuristic"):
        a = [make_policy(name).choose(state, HOOKS, HOURS, r) for r in [np.random.default_rng(3)] for _ in range(20)]
        b = [make_policy(name).choose(state, HOOKS, HOURS, r) for r in [np.random.default_rng(3)] for _ in range(20)]
        assert a == b, name


def test_make_policy_builds_every_named_policy():
    built = {name: make_policy(name, fixed=("cta", 9)) for name in POLICY_NAMES}
    assert {name: p.name for name, p in built.items()} == {name: name for name in POLICY_NAMES}
    assert POLICY_NAMES == ("xbot", "random", "heuristic", "fixed", "oracle", "ideal", "mabwiser_ts", "mabwiser_lin", "vw")


def test_the_core_registry_has_no_oracle_and_takes_another_registry():
    # the core knows only the policies that learn from outcomes; the simulator adds the oracle
    assert core_policies.POLICY_NAMES == ("xbot", "random", "heuristic", "fixed")
    with pytest.raises(ValueError, match=r"unknown policy 'oracle' \(expected one of xbot, random, heuristic, fixed\)"):
        core_policies.make_policy("oracle")
    assert core_policies.make_policy("fixed", fixed=("cta", 9), scenario="ignored").hook == "cta"
    built = core_policies.make_policy("mine", registry={"mine": lambda **opts: FixedPolicy(*opts["fixed"])},
                                      fixed=("question", 19))
    assert (built.hook, built.hour) == ("question", 19)


@pytest.mark.parametrize("name, kwargs, match", [
    ("greedy", {}, r"unknown policy 'greedy' \(expected one of xbot, random, heuristic, fixed, oracle, ideal, mabwiser_ts, mabwiser_lin, vw\)"),
    ("", {}, r"unknown policy ''"),
    ("Random", {}, r"unknown policy 'Random'"),
    ("fixed", {}, r"policy 'fixed' needs a \(hook, hour\)"),
    ("fixed", {"fixed": ("clickbait", 9)}, r"'clickbait'.*expected one of did_you_know"),
    ("fixed", {"fixed": ("question", 24)}, r"hour.*24.*0-23"),
    ("fixed", {"fixed": ("question", -1)}, r"hour.*-1.*0-23"),
])
def test_make_policy_errors_name_the_bad_value(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_policy(name, **kwargs)


def test_xbot_hour_floor_every_free_hour_keeps_a_share_and_the_propensity_is_its_frequency():
    # before the growth model has data: UCB1 on the timing arms (19 is best) mixed with the uniform floor
    state = PlanState(content_arms=RANKED_HOOKS, timing_arms=RANKED_HOURS, account_age_days=3)
    _, hour_n, _, hour_p = draw(XbotPolicy(), state)
    assert set(hour_n) == set(HOURS)
    assert_propensities_are_probabilities(hour_n, hour_p, DRAWS)
    assert min(next(iter(p)) for p in hour_p.values()) >= bandit.HOUR_FLOOR / len(HOURS) - 1e-12
    # without the floor: UCB1's single hour, propensity 1
    _, hour_n, _, hour_p = draw(XbotPolicy(hour_floor=0.0), state, n=50)
    assert list(hour_n) == [19] and hour_p[19] == {1.0}


@pytest.mark.parametrize("floor", [-0.01, 1.01, "0.1", None])
def test_xbot_hour_floor_must_be_a_probability(floor):
    with pytest.raises(ValueError, match=rf"hour_floor must be a probability in \[0, 1\], got {floor!r}"):
        XbotPolicy(hour_floor=floor)


def choices(policy, state: PlanState, n: int = 60, seed: int = 11) -> list[PlanChoice]:
    rng = np.random.default_rng(seed)
    return [policy.choose(state, HOOKS, HOURS, rng) for _ in range(n)]


def test_a_policy_reads_no_more_of_the_state_than_it_declares():
    """The plan job leaves out what a policy says it does not read (``state_reads``): the outcomes and the
    hour prior. Its choices and propensities must be the same with them as without them, draw for draw;
    the learner, which reads both, must differ (else this test could not fail)."""
    from datetime import datetime, timezone  # here: only this test needs a clock time

    from xbotlib.core.growth_model import PostOutcome
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rng = np.random.default_rng(3)
    outcomes = [PostOutcome(HOOKS[i % 6], None, HOURS[i % 8], float(rng.poisson(20 + 30 * (i % 6 == 2))),
                            float(rng.poisson(3)), 2000.0, posted_at=now) for i in range(40)]
    arms = {h: stats(h, 5 + i, 0.1 * i) for i, h in enumerate(HOOKS)}
    hours = {str(h): stats(str(h), 3 + i, 0.05 * (i % 3)) for i, h in enumerate(HOURS)}
    full = PlanState(arms, hours, 30.0, hour_prior_means={h: float(h % 5) for h in HOURS}, outcomes=outcomes, now=now)
    policies = [RandomPolicy(), HeuristicPolicy(), FixedPolicy("question", 19), XbotPolicy()]
    differs = {}
    for policy in policies:
        reads = core_policies.state_reads(policy)
        assert reads <= core_policies.COSTLY_STATE
        bare = PlanState(arms, hours, 30.0, hour_prior_means=full.hour_prior_means if "hour_prior_means" in reads
                         else None, outcomes=outcomes if "outcomes" in reads else (), now=now)
        stripped = PlanState(arms, hours, 30.0, now=now)
        a, b, c = (choices(policy, s) for s in (full, bare, stripped))
        assert a == b, policy.name
        differs[policy.name] = a != c
    assert core_policies.state_reads(XbotPolicy()) == core_policies.COSTLY_STATE and differs["xbot"]
    assert not any(differs[n] for n in ("random", "heuristic", "fixed"))
