"""Campaign summary: what ``xbot demo`` prints for one account at the end of a campaign."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Collection, Mapping, Sequence

from xbotlib.config import Settings
from xbotlib.store import models, outcomes
from xbotlib.views.experiment_reports import LiftReport, experiment_lift
from xbotlib.views.learning import GrowthModelView, growth_model_view


# what plans without a served version of each predictor kind (jobs/plan.py), said where versions are listed
WITHOUT_VERSION = {
    "content": "the plan job ranks candidate posts by the bandit's own estimate",
    "timing": "the hour is chosen without its prior (UCB1 on the outcomes alone, then the growth model)",
}


def serving_lines(versions: Sequence[Mapping], *, shown: Collection[str] = (), see: str = "") -> list[str]:
    """One line per predictor kind of ``versions`` (``store.models.list_versions``' rows, or a report's table of
    them as records): the version that serves, unless its key is in ``shown`` (printed beside it already), or that
    none does yet, how many missed the bar and what plans meanwhile, then ``see`` (where to read why)."""
    lines = []
    for kind, meanwhile in WITHOUT_VERSION.items():
        mine = [v for v in versions if v["predictor_key"].startswith(f"predictor:{kind}:")]
        active = next((v for v in mine if v["status"] == "active"), None)
        if active is None:
            why = f"none of {len(mine)} beat predict-the-mean by the serving margin" if mine else "none trained yet"
            lines.append(f"{kind}: no version serves yet ({why}); meanwhile {meanwhile}" + (f"; {see}" if see else ""))
        elif active["predictor_key"] not in shown:
            lines.append(f"{kind}: {active['predictor_key']} serves ({active['algorithm']}, {active['n_samples']} "
                         f"samples, cross-validated {active['cv_score']:.3f} against the baseline's "
                         f"{active['baseline_score']:.3f})")
    return lines


@dataclass
class AccountSummary:
    """What ``xbot demo`` prints for one account at the end of a campaign."""
    followers_first: int
    followers_last: int
    weekly_fpki: list[tuple[int, float, int]]  # (week from 1, mean pass-2 fpki, posts)
    model_versions: int
    latest_models: list[dict]                  # the newest version of each predictor kind
    growth_model: GrowthModelView | None       # hooks and hours ranked by expected follows; None before any post
    lifts: list[LiftReport]                    # one per experiment: the verdict on fpki, guardrails, appendix
    serving: list[str]                         # which version serves per kind when not the newest, or that none does


def account_summary(conn, settings: Settings, account_id: str, world: str, now: datetime, *,
                    experiment_ids: Sequence[str], seed: int | None = None) -> AccountSummary:
    """Followers, FPKI by week, model versions, the growth model (the admin API's view of it, hooks
    and hours ranked against the average arm) and each experiment's lift report — the same report,
    seed (``LIFT_SEED`` unless given) and figures as the experiment_lift notebook and the API."""
    first, last = outcomes.first_and_last_followers(conn, account_id)
    versions = models.list_versions(conn, account_id)  # by kind, newest first
    latest: dict[str, dict] = {}
    for v in versions:
        latest.setdefault(v["kind"], v)
    serving = serving_lines(versions, shown={v["predictor_key"] for v in latest.values()},
                            see="the train_predictors report shows why") if versions else []
    view = growth_model_view(conn, settings, account_id, world, now)
    if view.posts:
        rank = lambda effects: sorted(effects, key=lambda e: -e.relative_follows)  # noqa: E731
        view = view.model_copy(update={"hooks": rank(view.hooks), "hours": rank(view.hours)})
    lifts = [experiment_lift(conn, account_id, e, world, seed=seed) for e in experiment_ids]
    return AccountSummary(first, last, outcomes.weekly_fpki(conn, account_id), len(versions), list(latest.values()),
                          view if view.posts else None, lifts, serving)


def fpki_estimates(report: LiftReport) -> dict[str, float]:
    """From an estimable report's table: DR (AIPW, ridge) with its 95% interval, IPW (Hajek) and
    difference in means on per-post fpki."""
    table = report.table[report.table["outcome"] == "fpki"].set_index("estimator")
    dr = table.loc["aipw_ridge"]
    return {"dr": dr["estimate"], "ci_low": dr["ci_low"], "ci_high": dr["ci_high"],
            "ipw": table.at["ipw_hajek", "estimate"], "dim": table.at["difference_in_means", "estimate"]}
