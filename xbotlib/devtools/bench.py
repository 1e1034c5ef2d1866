"""`xbot bench growth|lift|speed`: how good and how fast xbot's learning is.

- growth: the same simulated campaign for each policy over several seeds (a fresh database per
  run), on one scenario or several (``--scenarios a,b``); followers gained, mean and spread, each
  policy's ratio to the oracle (and to the noise-aware ``ideal`` when it runs), xbot minus each policy
  paired by seed; the library policies a team would use instead (``xbotlib.sim.baselines``) among them.
  On a world whose best hook steps (``default_step``; ``afternoon_questions_drift`` drifts by a trend,
  without a step): the days each policy took to move to the new best hook, per seed. A changing world run
  beside the world it was derived from (its ``derived_from``): how much xbot's ratio to the oracle drops,
  with a 95% interval, against issue #20's 0.05. A scenario written
  for a shipped account profile (``cooking``: ``accounts/cooking.toml``) runs with that profile. ``--results
  FILE`` keeps each finished campaign and runs only those FILE lacks (``growth_results``): long runs resume.
- lift: many simulated randomised experiments with a known true lift, drawn from the scenario's
  audience model; bias, RMSE and 95% interval coverage of DR (AIPW) beside IPW and difference in means.
- speed: simulated days per second of a campaign, the daemons' and PostgreSQL's CPU per simulated day (and, in a
  run of more than 30 days, per 30-day window with the resident set at its end: does a day cost more, or the
  process hold more, as history grows?), and where the time goes (cProfile by area);
  several accounts are split over one daemon process per core (``--daemons``).

Each prints a Markdown table with the machine and date, ready for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

from xbotlib.config import PROJECT_ROOT, load_settings
from xbotlib.core.profile import load_profile
from xbotlib.devtools.bench_lift import lift, lift_table, parse_lift_args
from xbotlib.devtools.bench_speed import check_daemons, speed, speed_table
from xbotlib.devtools.growth_results import ResultsFile, fingerprint
from xbotlib.devtools.growth_worlds import (account_choices, fixed_choice, scenario_profile,  # noqa: F401 (re-exported)
                                            scenario_without_analytics)
from xbotlib.devtools.growth_tables import (drift_table, growth_moves, growth_summary, growth_table,  # noqa: F401 (re-exported)
                                            paired_differences, ratio_interval, timing_table)
from xbotlib.devtools.machine import host_line, machine
from xbotlib.devtools.testing import TestPostgres
from xbotlib.jobs.campaign import CAMPAIGN_START, CampaignConfig, days_bar, run_campaign
from xbotlib.sim import baselines
from xbotlib.sim import policies as sim_policies
from xbotlib.sim.oracle import Oracle, days_to_move
from xbotlib.sim.scenario import load_scenario
from xbotlib.store import outcomes
from xbotlib.store.db import Database, create_database, drop_database

GROWTH_POLICIES = ("xbot", "random", "heuristic", "fixed", "oracle")
BENCH_SCHEDULES = PROJECT_ROOT / "bench" / "schedules"


# ----------------------------------------------------------------------------- growth

def bench_campaign(db, policy: str, seed: int, days: int, scenario_path: str | None,
                   fixed: tuple[str, int] | None = None, profile_path: str | None = None):
    """One growth-bench campaign in ``db`` (migrated, empty): experiments off, the hourly bench cadence, the
    account on ``profile_path`` (None: the built-in profile). Returns the ``campaign.CampaignRun``."""
    cfg = CampaignConfig(days=days, seed=seed, scenario_path=scenario_path, policy=policy, fixed_arm=fixed,
                         experiments=False, schedules_dir=str(BENCH_SCHEDULES),
                         profile=load_profile(profile_path) if profile_path else None)
    return run_campaign(cfg, load_settings(env={}), db)


def attribution_figures(run, conn) -> dict:
    """Follows the collector attributed at the 24-hour read, beside the sandbox's truth for the same posts:
    ``attributed`` (pass-2 follows summed), ``true_posts`` and ``true_replies`` (the sandbox's settled
    follows of those originals and replies), ``true`` (both)."""
    account_id, sandbox = run.account_ids[0], run.contexts[0].sandbox
    final = outcomes.final_follows_by_tweet(conn, account_id)
    tweets = [sandbox.audience.tweets[t] for t in final if t in sandbox.audience.tweets]
    posts = sum(t.totals.follows for t in tweets if t.target is None)
    replies = sum(t.totals.follows for t in tweets if t.target is not None)
    return {"attributed": sum(final.values()), "true_posts": posts, "true_replies": replies, "true": posts + replies}


def _campaign_followers(args: tuple) -> dict:
    """Run one campaign in a fresh database; returns followers gained (runs in a worker process).
    ``seconds`` is its wall time, ``cpu_seconds`` the CPU time of this process meanwhile (the jobs and the
    policy, not the database server): the two figures that vary from run to run."""
    base_url, template, label, policy, seed, days, scenario_path, fixed, profile_path = args
    logging.getLogger("xbot").setLevel(logging.WARNING)
    name = f"xbot_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(base_url, name, template=template)
    try:
        with Database.from_url(url, pool_max=3) as db:
            t0, c0 = time.perf_counter(), time.process_time()
            run = bench_campaign(db, policy, seed, days, scenario_path, fixed, profile_path)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            with db.connection() as conn:
                first, last = outcomes.first_and_last_followers(conn, run.account_ids[0])
                earned = outcomes.follows_earned_by_posts(conn, run.account_ids[0])
                truth = attribution_figures(run, conn)
                moves = hook_moves(outcomes.posted_hooks(conn, run.account_ids[0], run.contexts[0].world),
                                   scenario_path, days, account_choices(profile_path))
            return {"scenario": label, "policy": policy, "seed": seed, "gained": last - first, "post_follows": earned,
                    "seconds": seconds, "cpu_seconds": cpu, **truth, "moves": moves,
                    "profile": Path(profile_path).relative_to(PROJECT_ROOT).as_posix() if profile_path else None}
    finally:
        drop_database(base_url, name)


def hook_moves(posts: list[tuple[datetime, str]], scenario_path: str | None, days: int,
               choices: tuple[tuple[str, ...], tuple[int, ...]] | None = None) -> list[dict]:
    """For each step of the scenario within the campaign's ``days`` that changes the best hook
    (``Oracle.changes``): the step's day, the best hook before and after it, and ``days`` — how many days the
    campaign's ``posts`` ((posted_at, hook), from ``outcomes.posted_hooks``) took to move to the new best hook
    (``oracle.days_to_move``: the first day from the step on whose next ``MOVE_WINDOW_DAYS`` days the new hook
    leads), None if it never did. Empty for a stationary world. The campaign's world starts at its clock's
    start (``campaign.CAMPAIGN_START``), so a post's day is its time since then. ``choices``: the account's
    (hooks, posting hours), ``account_choices`` (None: the built-in profile's)."""
    hooks, hours = choices or account_choices(None)
    steps = [c for c in Oracle(load_scenario(scenario_path)).changes(hours, hooks) if c.moves_hook and c.day < days]
    by_day = [((at - CAMPAIGN_START).total_seconds() / 86400.0, hook) for at, hook in posts]
    return [{"day": c.day, "before": c.before[0], "after": c.after[0],
             "days": days_to_move(by_day, c.day, c.after[0], days)} for c in steps]


def scenario_label(scenario: str | None) -> str:
    """How a scenario is named in the tables: as given (a shipped name or a path), ``default`` for None."""
    return scenario or "default"


def derived_labels(scenarios) -> dict[str, str]:
    """label -> the label of the scenario it was derived from (``derived_from``), among ``scenarios`` (names or
    paths; None: default): the pairs ``drift_table`` compares."""
    loaded = {scenario_label(s): load_scenario(s) for s in scenarios}
    by_file = {str(Path(scenario.source).resolve()): label for label, scenario in loaded.items()}
    return {label: by_file[scenario.derived_from] for label, scenario in loaded.items()
            if scenario.derived_from in by_file}


def growth(days: int = 60, seeds: int = 10, scenario: str | None = None, policies=GROWTH_POLICIES,
           workers: int = 2, analytics: bool = True, results: ResultsFile | None = None) -> list[dict]:
    """Run every policy on seeds 0..seeds-1; ``analytics=False`` runs on a copy of the scenario whose
    sandbox refuses analytics (``scenario_without_analytics``). ``results``: campaigns already there are read,
    not run again, and each new one is written there as it finishes (``growth_results``)."""
    return growth_scenarios(days, seeds, [scenario], policies, workers, analytics, results)[scenario_label(scenario)]


def growth_scenarios(days: int, seeds: int, scenarios, policies=GROWTH_POLICIES, workers: int = 2,
                     analytics: bool = True, results: ResultsFile | None = None) -> dict[str, list[dict]]:
    """``growth`` on each of ``scenarios`` (names or paths; None: default) in one pool of workers:
    scenario label -> its results."""
    tmp = None if analytics else tempfile.mkdtemp(prefix="xbot_bench_scenario_")
    try:
        paths = {}
        for i, s in enumerate(scenarios):
            if tmp is not None:   # a directory each: two scenarios may share a file name
                (Path(tmp) / str(i)).mkdir()
            paths[scenario_label(s)] = s if tmp is None else scenario_without_analytics(s, Path(tmp) / str(i))
        return _growth_many(days, seeds, paths, policies, workers, analytics=analytics, results=results)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def check_workers(workers: int) -> int:
    """``workers`` if it is a usable process count; else a ValueError naming the value and the fix."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be a whole number of processes, at least 1 (1 runs the campaigns "
                         f"one after another in this process): got {workers!r}")
    return workers


def growth_jobs(seeds: int, policies) -> list[tuple[str, int]]:
    """(policy, seed) in the order the campaigns are handed out and the results listed: seed by seed, every
    policy of a seed before the next seed, so two workers share the policies of each seed and a cut-short
    run still holds complete seeds."""
    return [(p, s) for s in range(seeds) for p in policies]


def _growth(days: int, seeds: int, scenario: str | None, policies, workers: int, pg: TestPostgres | None = None,
            out=sys.stderr) -> list[dict]:
    """One scenario's campaigns (``_growth_many``)."""
    return _growth_many(days, seeds, {scenario_label(scenario): scenario}, policies, workers, pg, out)[scenario_label(scenario)]


def _growth_many(days: int, seeds: int, scenarios: dict[str, str | None], policies, workers: int,
                 pg: TestPostgres | None = None, out=sys.stderr, *, analytics: bool = True,
                 results: ResultsFile | None = None) -> dict[str, list[dict]]:
    """Every (scenario, policy, seed) campaign, each in its own database cloned from one migrated template;
    ``scenarios``: label -> scenario path (None: default). The results of each scenario in ``growth_jobs``
    order whatever order they finish in, so ``workers`` changes the wall time and never the numbers
    (``tests/devtools/test_bench.py`` checks workers=1 against workers=2). ``workers=1`` runs them one after
    another in this process; more, in one pool of processes for all scenarios (no idle worker between
    scenarios). ``pg``: the server to use (default a new ``TestPostgres``, dropped at the end). ``results``: a
    results file (``growth_results``): its campaigns of this code are read instead of run, each new one is
    written to it as it finishes. ``analytics`` is recorded with each campaign (the scenarios are already the
    copies without analytics when it is off)."""
    check_workers(workers)
    order = [(label, p, s) for label in scenarios for p, s in growth_jobs(seeds, policies)]
    profiles = {label: scenario_profile(path) for label, path in scenarios.items()}
    fixed = {label: fixed_choice(path, profiles[label]) for label, path in scenarios.items()}
    prints = {label: fingerprint([load_scenario(path).source, profiles[label]]) for label, path in scenarios.items()}
    found: dict[tuple[str, str, int], dict] = {}
    other_code = 0
    for r in results.read() if results else []:
        if r["days"] != days or r["analytics"] != analytics or r["scenario"] not in scenarios:
            continue
        if r["fingerprint"] != prints[r["scenario"]]:
            other_code += 1
            continue
        found[(r["scenario"], r["policy"], r["seed"])] = r
    todo = [key for key in order if key not in found]
    progress = GrowthProgress(len(todo), workers, out,
                              reused=len(found), other_code=other_code,
                              source=results.path if results else None)
    done: dict[tuple[str, str, int], dict] = dict(found)

    def finished(r: dict) -> None:
        r = {**r, "days": days, "analytics": analytics, "fingerprint": prints[r["scenario"]]}
        if results:
            results.append(r)
        done[(r["scenario"], r["policy"], r["seed"])] = r
        progress.done(r)

    if todo:
        own = pg is None
        pg = pg or TestPostgres()
        jobs = [(pg.base_url, pg.template, label, p, s, days, scenarios[label], fixed[label] if p == "fixed" else None,
                 profiles[label]) for label, p, s in todo]
        try:
            if workers == 1:
                for job in jobs:
                    finished(_campaign_followers(job))
            else:
                with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                    for future in as_completed([pool.submit(_campaign_followers, job) for job in jobs]):
                        finished(future.result())
        finally:
            if own:
                pg.drop_all()
    return {label: [done[key] for key in order if key[0] == label] for label in scenarios}


class GrowthProgress:
    """One line per finished campaign on ``out``: how many are done, the campaign's own figures, the
    elapsed time and an ETA (the mean wall time per finished campaign so far, times the ones left)."""

    def __init__(self, total: int, workers: int, out=sys.stderr, *, reused: int = 0, other_code: int = 0,
                 source: Path | None = None):
        self.total, self.workers, self.out = total, workers, out
        self.finished = 0
        self.t0 = time.perf_counter()
        if source is not None:
            print(f"  {reused} campaigns read from {source}"
                  + (f"; {other_code} there ran other code (fingerprint differs): not reused" if other_code else ""),
                  file=out, flush=True)
        print(f"  {total} campaigns on {workers} worker(s)", file=out, flush=True)

    def done(self, r: dict) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.finished * (self.total - self.finished)
        print(f"  [{self.finished}/{self.total}] {r['policy']:<12} seed {r['seed']:<2} gained {r['gained']:>5} "
              f"({r['seconds']:.0f} s)  elapsed {_clock(elapsed)}, ETA {_clock(eta)}", file=self.out, flush=True)


def _clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for progress lines."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ----------------------------------------------------------------------------- entry point

def parse_growth_args(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``xbot bench growth``'s options, checked before any campaign runs: ``policies`` a tuple of names of
    ``xbotlib.sim.policies`` whose libraries are installed, ``scenarios`` a list of loadable scenarios
    (None: the default one). A bad value exits through ``p.error`` naming it and the fix."""
    p.add_argument("--days", type=int, default=60, help="simulated days per campaign, 1 to 365 (default 60)")
    p.add_argument("--seeds", type=int, default=10, help="campaigns per policy, seeds 0..N-1 (default 10)")
    p.add_argument("--scenario", default=None, help="one scenario: a shipped name or a TOML path (default scenarios/default.toml)")
    p.add_argument("--scenarios", default=None,
                   help="comma-separated scenarios, one table each and a summary across them (instead of --scenario)")
    p.add_argument("--policies", default=",".join(GROWTH_POLICIES),
                   help=f"comma-separated, from {', '.join(sim_policies.POLICY_NAMES)} (default {','.join(GROWTH_POLICIES)}); "
                        f"{', '.join(baselines.POLICIES)} need `{baselines.INSTALL}`")
    p.add_argument("--workers", type=int, default=2,
                   help="processes running campaigns side by side; 1 runs them one after another in this "
                        "process; the numbers are the same either way (default 2)")
    p.add_argument("--analytics", choices=("on", "off"), default="on",
                   help="off: the sandbox refuses GET /2/tweets/analytics (as X does for an access level "
                        "without it), so follows come from follower-snapshot attribution (default on)")
    p.add_argument("--results", default=None, metavar="FILE",
                   help="keep every finished campaign in FILE (JSON lines) as it finishes, and run only the "
                        "campaigns FILE lacks: a stopped run resumes, more --seeds add only the new seeds; "
                        "lines from other code are not reused (see xbotlib/devtools/growth_results.py)")
    a = p.parse_args(argv)
    try:
        CampaignConfig(days=a.days).validate()   # the campaign's own check of --days
    except ValueError as exc:
        p.error(str(exc))
    if a.seeds < 1:
        p.error(f"--seeds must be at least 1 (campaigns per policy, seeds 0..N-1), got {a.seeds}")
    a.policies = tuple(dict.fromkeys(x.strip() for x in a.policies.split(",") if x.strip()))
    bad = [x for x in a.policies if x not in sim_policies.POLICY_NAMES]
    if bad or not a.policies:
        p.error(f"--policies {','.join(bad) or '(none)'}: not a policy (expected some of {', '.join(sim_policies.POLICY_NAMES)})")
    for x in a.policies:
        if x in baselines.POLICIES:
            try:
                baselines.require(x)
            except baselines.MissingDependency as exc:
                p.error(str(exc))
    if a.scenario is not None and a.scenarios is not None:
        p.error("give --scenario or --scenarios, not both (--scenarios a,b takes one or more)")
    names = [x.strip() for x in a.scenarios.split(",")] if a.scenarios is not None else [a.scenario]
    if a.scenarios is not None and (not all(names) or len(set(names)) != len(names)):
        p.error(f"--scenarios {a.scenarios!r}: expected distinct comma-separated names or paths, none empty")
    for x in names:
        try:
            load_scenario(x)
        except (OSError, ValueError) as exc:
            p.error(f"scenario {x!r} cannot be loaded: {exc}")
    a.scenarios = names
    try:
        check_workers(a.workers)
        a.results = ResultsFile(a.results) if a.results else None
        if a.results:
            a.results.read()   # a file that is not a results file: refused before any campaign runs
    except ValueError as exc:
        p.error(str(exc))
    return a


def _description(name: str) -> str:
    """The module docstring's paragraph on bench ``name`` (its ``- name:`` item), for that bench's --help."""
    items = __doc__.split("\n\n")[1].split("\n- ")
    item = next((i for i in items if i.lstrip("- ").startswith(f"{name}:")), None)
    return "\n".join(line.strip() for line in item.lstrip("- ").splitlines()) if item else __doc__.split("\n\n")[1]


def main(name: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"xbot bench {name}", description=_description(name),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if name == "growth":
        a = parse_growth_args(p, argv)
        analytics = a.analytics == "on"
        by_scenario = growth_scenarios(a.days, a.seeds, a.scenarios, a.policies, a.workers, analytics=analytics,
                                       results=a.results)
        for label, res in by_scenario.items():
            print(growth_table(res, a.days, a.seeds, label, analytics=analytics) + "\n")
            moves = growth_moves(res, a.days)
            if moves:
                print(moves + "\n")
        print(f"summary: {a.days} days, {a.seeds} seeds, {len(by_scenario)} scenario(s) — {machine()}\n")
        print(growth_summary(by_scenario) + "\n")
        drift = drift_table(by_scenario, derived_labels(a.scenarios))
        if drift:
            print(drift + "\n")
        print(timing_table(by_scenario))
        print("\n" + host_line())
    elif name == "lift":
        a = parse_lift_args(p, argv)
        results = [lift(a.replicates, a.n, e, a.scenario, accounts=k) for k in a.accounts for e in a.experiments]
        print(lift_table(results))
    else:
        p.add_argument("--days", type=int, default=14, help="simulated days of the profiled campaign (default 14; over 30, the CPU "
                       "per simulated day is also shown for each 30-day window)")
        p.add_argument("--accounts", type=int, default=1, help="accounts in the campaign, on one database (default 1)")
        p.add_argument("--daemons", type=int, default=None,
                       help="daemon processes the accounts are split over, as `xbot run --workers N` spreads accounts "
                            "(default: one per core, at most one per account; 1: every account in one daemon)")
        p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
        p.add_argument("--no-profile", action="store_true", help="time the campaign without cProfile (the "
                       "profiler itself costs about a third of the wall time)")
        p.add_argument("--memory", action="store_true", help="sample resident memory once per simulated day and "
                       "trace Python allocations (tracemalloc; slower): peak and growth after a 30-day warm-up")
        a = p.parse_args(argv)
        daemons = a.daemons if a.daemons is not None else (1 if a.memory else min(a.accounts, os.cpu_count() or 1))
        try:
            # the campaign's own checks (days, accounts, seed), before any process starts
            CampaignConfig(days=a.days, accounts=a.accounts, seed=a.seed).validate()
            check_daemons(daemons, a.accounts, a.memory)
        except ValueError as exc:
            p.error(str(exc))
        with days_bar(a.days, sys.stderr) as on_progress:   # stderr: the table goes to stdout
            res = speed(a.days, a.seed, a.accounts, profile=not a.no_profile, memory=a.memory, daemons=daemons,
                        progress=on_progress)
        print(speed_table(res))
        print("\n" + host_line())
    return 0
