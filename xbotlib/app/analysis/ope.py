"""Off-policy review of a candidate policy on an account's logged decisions: `xbot ope` and the
``policy_review`` notebook both call ``review_policy``.

The value is **follows per post at the final (24-hour) read**: the reward the timing arm and the growth
model learn from, and the one a reader can check against the account's own numbers. The logged policy's
value is the plain mean of the same follows over the same decisions (the on-policy figure a candidate is
compared with).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xbotlib.app.analysis.plots import message_figure
from xbotlib.config import Settings
from xbotlib.core import ope, ope_replay
from xbotlib.core.profile import default_profile
from xbotlib.sim import policies as sim_policies
from xbotlib.store import accounts, queue, read_models
from xbotlib.store.ope import logged_decisions
from xbotlib.store.outcomes import MODEL_WINDOW_DAYS

REWARD = "follows per post (final 24-hour read)"


@dataclass
class PolicyReview:
    """What ``review_policy`` found: the estimates, the overlap and what the replay left out."""
    account_id: str
    policy: str
    estimates: list[ope.Estimate]
    overlap: ope.Overlap
    logged_value: float
    logged_se: float
    dropped: dict[str, int]
    hour_added: int
    warnings: list[str] = field(default_factory=list)
    arrays: dict = field(default_factory=dict, repr=False)  # reward, action, pscore, action_dist, q_hat
    space: ope_replay.ActionSpace | None = field(default=None, repr=False)
    points: list = field(default_factory=list, repr=False)  # the replayed decisions (ope_replay.ReplayPoint)

    def table(self) -> pd.DataFrame:
        """One row per estimator (and the logged policy's own mean): value, 95% interval, n, ESS, max weight."""
        rows = [{"estimator": e.estimator, "value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "se": e.se,
                 "n": e.n, "ess": self.overlap.ess, "max_weight": self.overlap.max_weight} for e in self.estimates]
        n = self.overlap.n
        rows.append({"estimator": "logged (on-policy mean)", "value": self.logged_value,
                     "ci_low": self.logged_value - ope.Z95 * self.logged_se,
                     "ci_high": self.logged_value + ope.Z95 * self.logged_se, "se": self.logged_se, "n": n,
                     "ess": float(n), "max_weight": 1.0})
        return pd.DataFrame(rows)

    def text(self) -> str:
        """The table and the warnings as plain text (what `xbot ope` prints)."""
        lines = [f"account {self.account_id} · candidate {self.policy} · value = {REWARD}",
                 f"{'estimator':<24} {'value':>8} {'95% interval':>21} {'n':>5} {'ESS':>7} {'max w':>7}"]
        for r in self.table().itertuples():
            ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if math.isfinite(r.ci_low) else "—"
            lines.append(f"{r.estimator:<24} {r.value:>8.3f} {ci:>21} {r.n:>5} {r.ess:>7.1f} {r.max_weight:>7.2f}")
        lines.append(f"candidate mass on never-logged actions: {self.overlap.off_support:.1%}; "
                     f"mean weight {self.overlap.mean_weight:.2f}")
        left_out = {k: v for k, v in self.dropped.items() if v}
        if left_out:
            lines.append("left out: " + ", ".join(f"{v} {k}" for k, v in left_out.items()))
        if self.hour_added:
            lines.append(f"{self.hour_added} logged hours were not in the rebuilt offered set (added): see "
                         "xbotlib.core.ope_replay on what is assumed")
        lines.extend(f"WARNING: {w}" for w in self.warnings)
        return "\n".join(lines)


def account_setup(conn, settings: Settings, account_id: str):
    """(vocabulary, posting hours, rotation max run, created_at) of a stored account, its profile's settings
    over ``settings`` as the jobs apply them (``jobs.context.build_context``)."""
    if not read_models.account_if_stored(conn, account_id):
        known = ", ".join(sorted(accounts.list_account_ids(conn))) or "none"
        raise ValueError(f"unknown account {account_id!r} (stored accounts: {known}; `xbot account list`)")
    stored = accounts.load_profile(conn, account_id)
    if stored is not None:
        settings = settings.replace(**stored.settings_overrides())
    profile = stored or default_profile()
    return profile.vocabulary(), list(settings.posting_hours), settings.rotation_max_run, \
        queue.account_created_at(conn, account_id)


def review_policy(conn, settings: Settings, account_id: str, policy: str, *, fixed: tuple[str, int] | None = None,
                  draws: int = 40, seed: int = 0, world: str | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> PolicyReview:
    """Estimate the value of the candidate ``policy`` (any name of ``xbotlib.sim.policies.POLICIES``; ``fixed``
    needs ``fixed=(hook, hour)``) from ``account_id``'s logged post decisions with DR, IPW and SNIPW."""
    ope_replay.check_draws(draws)   # before the log is read: the replay would refuse it only after
    candidate = sim_policies.make_policy(policy, fixed=fixed)  # an unknown name fails here, naming the known ones
    vocabulary, hours, max_run, created_at = account_setup(conn, settings, account_id)
    decisions = logged_decisions(conn, account_id, world or settings.world)
    return review_decisions(decisions, candidate, vocabulary=vocabulary, posting_hours=hours,
                            rotation_max_run=max_run, account_created_at=created_at, account_id=account_id,
                            policy_label=policy if fixed is None else f"fixed {fixed[0]}:{fixed[1]}",
                            draws=draws, seed=seed, on_progress=on_progress)


def review_decisions(decisions, candidate, *, vocabulary, posting_hours, rotation_max_run, account_created_at,
                     account_id: str, policy_label: str, draws: int = 40, seed: int = 0,
                     on_progress: Callable[[int, int], None] | None = None) -> PolicyReview:
    """``review_policy`` on decisions already read (the bench replays a campaign's log this way).
    ``on_progress(done, total)`` after each replayed decision the candidate was asked about (its slow part)."""
    posts = [d for d in decisions if d.decision_type == "post"]
    if not posts:
        raise ValueError(f"account {account_id!r} has no logged post decisions: nothing to evaluate (run the "
                         "jobs, or `xbot demo`, first)")
    rp = ope_replay.replay(decisions, vocabulary=vocabulary, posting_hours=posting_hours,
                           rotation_max_run=rotation_max_run, account_created_at=account_created_at,
                           window_days=MODEL_WINDOW_DAYS)
    if not rp.points:
        reasons = ", ".join(f"{v} {k}" for k, v in rp.dropped.items() if v)
        fix = (" (decisions made before propensities were stored cannot be evaluated)"
               if rp.dropped.get("no propensities") == len(posts) else "")
        raise ValueError(f"account {account_id!r}: none of its {len(posts)} post decisions can be evaluated "
                         f"({reasons}){fix}")
    arr = ope_replay.arrays(rp)
    total = len(rp.points)
    arr["action_dist"] = ope_replay.candidate_matrix(
        candidate, rp.points, rp.space, seed=seed, draws=draws,
        on_progress=None if on_progress is None else (lambda done: on_progress(done, total)))
    arr["q_hat"] = ope.crossfit_q_hat(ope_replay.action_features(rp.points, rp.space), arr["action"], arr["reward"],
                                      offset=ope_replay.log_followers(rp.points), seed=seed)
    estimates, ov = ope.evaluate(arr["reward"], arr["action"], arr["pscore"], arr["action_dist"], arr["q_hat"])
    r = arr["reward"]
    se = float(np.std(r, ddof=1) / math.sqrt(r.size)) if r.size > 1 else math.nan
    return PolicyReview(account_id, policy_label, estimates, ov, float(r.mean()), se, rp.dropped, rp.hour_added,
                        ope.warnings(ov), arr, rp.space, rp.points)


def parse_arm(text: str | None) -> tuple[str, int] | None:
    """'hook:hour' (``--fixed``, the notebook's ``fixed``) -> (hook, hour); None stays None."""
    if text is None:
        return None
    hook, sep, hour = str(text).partition(":")
    if not sep or not hook.strip() or not hour.strip().isdigit():
        raise ValueError(f"fixed arm {text!r}: expected HOOK:HOUR, e.g. question:19")
    return hook.strip(), int(hour)


def review_or_reason(conn, settings: Settings, account_id: str, policy: str, **options) -> tuple[PolicyReview | None, str]:
    """``review_policy``, or (None, why) when the account has nothing to evaluate yet (a report says so
    instead of failing: a new account has no final outcomes for its first day)."""
    try:
        return review_policy(conn, settings, account_id, policy, **options), ""
    except ValueError as exc:
        return None, str(exc)


def plot_review(review: PolicyReview | None, reason: str = ""):
    """The estimates with their 95% intervals beside the logged policy's mean (left), and the importance
    weights of the logged decisions (right: mass at 0 is where the candidate would have done otherwise)."""
    if review is None:
        return message_figure(reason or "nothing to evaluate", "policy review")
    fig = Figure(figsize=(9.0, 3.2), layout="constrained")  # without pyplot, as xbotlib.app.analysis.plots
    ax, right = fig.subplots(1, 2)
    df = review.table()
    y = np.arange(len(df))[::-1]
    ok = np.isfinite(df["value"].to_numpy())
    ax.errorbar(df["value"][ok], y[ok], xerr=[(df["value"] - df["ci_low"])[ok], (df["ci_high"] - df["value"])[ok]],
                fmt="o", capsize=4, color="tab:blue")
    ax.set_yticks(y, df["estimator"])
    ax.axvline(review.logged_value, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(REWARD)
    ax.set_title(f"candidate {review.policy}: estimated value")
    w = ope.importance_weights(review.arrays["action"], review.arrays["pscore"], review.arrays["action_dist"])
    right.hist(w, bins=30, color="tab:orange")
    right.set_xlabel("importance weight (candidate / logger)")
    right.set_ylabel("decisions")
    right.set_title(f"weights: ESS {review.overlap.ess:.0f} of {review.overlap.n}")
    return fig
