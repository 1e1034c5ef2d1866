"""The policies a simulated campaign can run: the core's (``xbotlib.core.policies``) and the oracle.

The ``oracle`` policy reads the sandbox's ground truth (``xbotlib.sim.oracle``), so it lives in the
simulator, not in the pure core: benchmarks and the demo summary only. ``POLICIES`` extends the core's
registry with it; ``make_policy`` and ``POLICY_NAMES`` are what the demo (``xbot demo --policy``) and
the benches use.
"""
from __future__ import annotations

from pathlib import Path

from xbotlib.core import policies as core_policies
from xbotlib.core.policies import PlanChoice, Policy, PolicyFactory, allowed_hooks
from xbotlib.sim import baselines
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import Scenario


class OraclePolicy:
    """Knows the ground truth: the allowed (hook, hour) with the highest expected follows."""
    name = "oracle"

    def __init__(self, oracle):
        self.oracle = oracle

    def choose(self, state, hooks, hours, rng):
        best = max(((h, t) for h in allowed_hooks(state, hooks) for t in hours),
                   key=lambda ht: self.oracle.expected_follows(ht[0], ht[1]))
        return PlanChoice(best[0], 1.0, int(best[1]), 1.0)


def _oracle(scenario: Scenario | str | Path | None = None, **_options) -> OraclePolicy:
    """The oracle of ``scenario`` (the default scenario when None)."""
    return OraclePolicy(Oracle(scenario))


POLICIES: dict[str, PolicyFactory] = {**core_policies.POLICIES, "oracle": _oracle, **baselines.POLICIES}
POLICY_NAMES = tuple(POLICIES)


def make_policy(name: str, *, scenario: Scenario | str | Path | None = None,
                fixed: tuple[str, int] | None = None) -> Policy:
    """Build a policy by name; ``oracle`` reads ``scenario`` (the default one when None), ``fixed`` needs a
    (hook, hour)."""
    return core_policies.make_policy(name, registry=POLICIES, scenario=scenario, fixed=fixed)
