"""The policies a simulated campaign can run: the core's (``xbotlib.core.policies``) and the oracle.

The ``oracle`` policy reads the sandbox's ground truth (``xbotlib.sim.oracle``), so it lives in the
simulator, not in the pure core: benchmarks and the demo summary only. ``POLICIES`` extends the core's
registry with it; ``make_policy`` and ``POLICY_NAMES`` are what the demo (``xbot demo --policy``) and
the benches use.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from xbotlib.core import policies as core_policies
from xbotlib.core.policies import PlanChoice, Policy, PolicyFactory, allowed_hooks
from xbotlib.sim.oracle import Oracle, slot_time
from xbotlib.sim.scenario import Scenario


class OraclePolicy:
    """Knows the ground truth: the allowed (hook, hour) with the highest expected follows.

    In a drifting world the truth depends on the day: the plan at ``state.now`` books an hour later that
    day (or the next), so each hour is valued at its slot's time (``oracle.slot_time``), which is when the
    audience will see the post. A drifting world needs ``state.now``; a stationary one ignores it.
    """
    name = "oracle"

    def __init__(self, oracle: Oracle):
        self.oracle = oracle

    def choose(self, state, hooks, hours, rng):
        now = None if self.oracle.scenario.stationary else state.now  # a stationary world: time does not matter
        if now is None and not self.oracle.scenario.stationary:
            raise ValueError(f"scenario {self.oracle.scenario.name!r} drifts: the oracle needs the plan's time "
                             "(PlanState(now=...), a UTC-aware datetime)")

        def value(hook_hour: tuple[str, int]) -> float:
            at = None if now is None else slot_time(now, hook_hour[1], self.oracle.scenario.timezone)
            return self.oracle.expected_follows(hook_hour[0], hook_hour[1], at=at)

        best = max(((h, t) for h in allowed_hooks(state, hooks) for t in hours), key=value)
        return PlanChoice(best[0], 1.0, int(best[1]), 1.0)


def _oracle(scenario: Scenario | str | Path | None = None, start: datetime | None = None,
            **_options) -> OraclePolicy:
    """The oracle of ``scenario`` (the default scenario when None) in a world that started at ``start``
    (``scenario.WORLD_START``, the campaign's default clock start, when None)."""
    return OraclePolicy(Oracle(scenario, start=start))


POLICIES: dict[str, PolicyFactory] = {**core_policies.POLICIES, "oracle": _oracle}
POLICY_NAMES = tuple(POLICIES)


def make_policy(name: str, *, scenario: Scenario | str | Path | None = None,
                fixed: tuple[str, int] | None = None, start: datetime | None = None) -> Policy:
    """Build a policy by name; ``oracle`` reads ``scenario`` (the default one when None) in a world that
    started at ``start`` (the campaign's clock start; ``scenario.WORLD_START`` when None), ``fixed`` needs
    a (hook, hour)."""
    return core_policies.make_policy(name, registry=POLICIES, scenario=scenario, fixed=fixed, start=start)
