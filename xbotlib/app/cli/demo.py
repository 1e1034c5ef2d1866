"""`xbot demo`: the main job — a simulated campaign through the real jobs, then reports and a summary."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from xbotlib.app.cli.account import checked_profile
from xbotlib.app.cli.errors import CliError
from xbotlib.config import load_settings
from xbotlib.logs import setup_logging

DEMO_NOTEBOOKS = ("collect_outcomes", "train_predictors", "growth_review", "explore_outcomes", "policy_review")
DEMO_LIFT_EXPERIMENTS = ("question_cta", "hashtag_1", "late_evening_slot", "contrarian_reply")


def cmd_demo(args: argparse.Namespace) -> int:
    # imported here for start-up time: the campaign loads the jobs, the simulator and psycopg
    from xbotlib.jobs.campaign import CampaignConfig, campaign_database, days_bar, run_campaign
    from xbotlib.sim.scenario import ScenarioError, load_scenario  # start-up time, as above
    from xbotlib.store import migrate  # start-up time, as above
    from xbotlib.store.db import Database  # start-up time, as above

    settings = load_settings()
    profile, scenario_path, scenario_note = None, args.scenario, None
    if args.account_profile:
        profile = checked_profile(args.account_profile)  # validated like `xbot account check`, before any work
        if scenario_path is None:
            scenario_path, scenario_note = matching_scenario(profile)
    log_file = settings.log_path
    # the demo's job lines go to the log file; the terminal shows the progress bar and the summary
    setup_logging(logging.DEBUG if args.verbose else logging.INFO, log_file=log_file,
                  stderr_level=logging.DEBUG if args.verbose else logging.WARNING)
    config = CampaignConfig(days=args.days, seed=args.seed, scenario_path=scenario_path, accounts=args.accounts,
                            policy=args.policy, profile=profile)
    try:
        config.validate()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if scenario_path:  # read it now: a bad file is refused before the demo's database is recreated
        try:
            load_scenario(scenario_path)
        except ScenarioError as exc:
            raise CliError(f"--scenario: {exc}") from None

    t0 = time.perf_counter()
    print(f"xbot demo: {config.days} simulated days, seed {config.seed}, policy {config.policy}, "
          f"{config.accounts} account(s), scenario {scenario_path or 'scenarios/default.toml'}"
          + (f", profile {args.account_profile} (topics: {', '.join(profile.topic_names)})" if profile else ""),
          flush=True)
    if scenario_note:
        print(f"  {scenario_note}", flush=True)
    url = campaign_database(settings, set_default=True)  # later commands read this campaign with no setting
    with Database.from_url(url, pool_max=4) as db:
        migrate.up(db)
        with days_bar(config.days, sys.stdout) as on_progress:
            run = run_campaign(config, settings, db, on_progress=on_progress)

        reports_index = None
        if not args.no_notebooks:
            reports_index = _run_notebooks(url, run.account_ids[0], settings.reports_path)
        _print_summary(run, db, reports_index, url, time.perf_counter() - t0, log_file, settings)
    return 0


def matching_scenario(profile) -> tuple[str | None, str | None]:
    """The shipped scenario whose audience reads the profile's topics (``scenarios/<id>.toml`` first, then
    the others by name), and a note for the user; (None, note) when none matches (the default audience)."""
    # imported here for start-up time: the simulator loads numpy
    from xbotlib.core import vocab
    from xbotlib.sim.scenario import SCENARIO_DIR, load_scenario  # start-up time, as above

    wanted = set(profile.topic_names)
    own = SCENARIO_DIR / f"{profile.id}.toml"
    candidates = ([own] if own.is_file() else []) + sorted(p for p in SCENARIO_DIR.glob("*.toml") if p != own)
    for path in candidates:
        # a scenario without topic keywords reads the built-in niche (vocab.DEFAULT)
        topics = getattr(load_scenario(str(path)), "vocabulary", vocab.DEFAULT).topics
        if set(topics) == wanted:  # the absolute path: the demo may run from any folder
            rel = path.relative_to(SCENARIO_DIR.parent)
            return str(path), f"scenario {rel}: its audience reads this profile's topics (pass --scenario to choose another)"
    return None, (f"no shipped scenario reads the topics {', '.join(profile.topic_names)}: the default audience "
                  "will not recognise them (write one, see docs/SCENARIO.md, and pass --scenario)")


def _run_notebooks(db_url: str, account_id: str, reports_dir: Path):
    """The demo's reports, kernels side by side (``reports.batch``); a bar counts them as they finish,
    then the failures are listed in the reports' order. Returns the reports index."""
    # imported here for start-up time: keeps `xbot --help` fast
    from tqdm import tqdm

    from xbotlib.app.reports.batch import failures, run_notebooks  # start-up time, as above

    jobs = [(name, {"account_id": account_id}) for name in DEMO_NOTEBOOKS]
    jobs += [("experiment_lift", {"account_id": account_id, "experiment_id": e}) for e in DEMO_LIFT_EXPERIMENTS]
    t0 = time.perf_counter()
    with tqdm(total=len(jobs), desc="reports", unit="notebook", file=sys.stdout, disable=None) as bar:
        def on_finished(run) -> None:
            bar.set_postfix_str(f"{run.name} {run.status}", refresh=False)
            bar.update(1)

        results = run_notebooks(jobs, db_url=db_url, reports_dir=reports_dir, on_finished=on_finished)
    for failed in failures(results):
        print(f"  report {failed.run.name} FAILED (its report shows the error): {failed}")
    print(f"reports: {len(results)} notebooks in {time.perf_counter() - t0:.1f} s", flush=True)
    return results[-1].index_path if results else reports_dir / "index.html"


def _print_summary(run, db, reports_index, url, elapsed, log_file, settings) -> None:
    # imported here for start-up time: the read models load pandas and scikit-learn
    from xbotlib import views
    from xbotlib.jobs.campaign import EXPERIMENTS  # start-up time, as above
    from xbotlib.sim.oracle import Oracle, true_lift_for_posts  # start-up time, as above

    oracle = Oracle(run.scenario)
    print()
    print("=" * 78)
    print(f"campaign summary — {run.config.days} days, policy {run.config.policy}, seed {run.config.seed}, "
          f"{elapsed:.0f} s wall ({run.elapsed_s:.0f} s simulating)")
    print("=" * 78)
    for ctx in run.contexts:
        with db.connection() as conn:
            # the lift seed is the report's and the API's (LIFT_SEED), not the campaign's: one computation
            summary = views.account_summary(conn, ctx.settings, ctx.account_id, ctx.world, ctx.clock.now(),
                                            experiment_ids=EXPERIMENTS)
        first, last = summary.followers_first, summary.followers_last
        print(f"\naccount {ctx.account_id}: followers {first} -> {last} ({last - first:+d})")
        if run.config.profile is not None:
            _print_profile_lines(db, ctx)
        if summary.weekly_fpki:
            print("  FPKI by week:  " + "  ".join(f"w{w}:{f:.2f}(n={n})" for w, f, n in summary.weekly_fpki))
        if summary.model_versions:
            print(f"  models trained: {summary.model_versions} versions; latest "
                  + ", ".join(f"{v['predictor_key']} ({v['algorithm']}, n={v['n_samples']}, cv={_f(v['cv_score'])} vs "
                              f"baseline {_f(v['baseline_score'])}, {_served(v)})" for v in summary.latest_models))
            for line in summary.serving:
                print("    " + line)
        else:
            print("  models trained: none yet (the learner needs at least 5 pass-2 outcomes)")
        view = summary.growth_model
        if view:
            best_hook, best_hour = oracle.best_choice(ctx.settings.posting_hours)
            show = lambda effects: "  ".join(f"{e.arm} x{e.relative_follows:.2f}" for e in effects[:3])  # noqa: E731
            print(f"  growth model ({view.posts} posts), expected follows vs the average arm:")
            print(f"    hooks: {show(view.hooks)}   (the scenario's best: {best_hook})")
            print(f"    hours: {show(view.hours)}   (the scenario's best: {best_hour})")
        print("  experiment lift on per-post fpki (the experiment_lift report's verdict line; then DR with its 95% CI, "
              "IPW, difference in means and the true lift for these posts):")
        for report in summary.lifts:
            name, n = report.experiment_id, len(report.frame)
            if not report.estimable:
                print(f"    {name:<18} n={n:<4} not estimable yet: {report.reason}")
                continue
            est = views.fpki_estimates(report)
            true = true_lift_for_posts(oracle, report.frame, name)
            print(f"    {name:<18} n={n:<4} {report.decision.line}")
            if est["ci_high"] - est["ci_low"] <= 0:
                print(f"    {'':<25}every outcome is the same ({est['dr']:+.3f}), so there is no interval to give; "
                      f"true {true:+.3f}")
            else:
                covered = "covers" if est["ci_low"] <= true <= est["ci_high"] else "misses"
                print(f"    {'':<25}DR {est['dr']:+.3f} [{est['ci_low']:+.3f}, {est['ci_high']:+.3f}]  "
                      f"IPW {est['ipw']:+.3f}  DiM {est['dim']:+.3f}  true {true:+.3f} ({covered})")
    print(f"\nreports: {reports_index}" if reports_index else "\nreports: skipped (--no-notebooks)")
    print(f"database: {url}")
    print(_next_steps(settings, url))
    print(f"log: {log_file}")


def _print_profile_lines(db, ctx) -> None:
    """What a profile's campaign posted about: its topics (posts and replies each) and its latest posts."""
    # imported here for start-up time: psycopg is slow to import
    from xbotlib.store import accounts

    with db.connection() as conn:
        topics = accounts.posted_by_topic(conn, ctx.account_id)
        latest = accounts.latest_posted(conn, ctx.account_id, limit=2)
    print("  topics posted: " + "  ".join(f"{r['topic'] or '(none)'} {r['posts']}+{r['replies']}r" for r in topics))
    for r in latest:
        print(f"  latest post ({r['generation_source']}, {r['topic']}, {r['hook_pattern']}): {r['content']}")


def _next_steps(settings, url: str) -> str:
    """What to do next: with the embedded server the demo's database is now the workspace default."""
    if settings.database_url:  # XBOT_DATABASE_URL names the database every command uses: say how to reach the demo's
        return f"  explore it: XBOT_DATABASE_URL='{url}' xbot lab   (XBOT_DATABASE_URL points at another database)"
    if settings.world == "live":
        return f"  the workspace default is unchanged (live posting never uses a demo's database); explore it: XBOT_DATABASE_URL='{url}' xbot lab"
    return (f"  it is now this workspace's default ({settings.home_path}): `xbot experiment list`, `xbot lab`, `xbot api`\n"
            "  and the notebooks read it with no setting; `xbot db start` keeps the database up while you work\n"
            "  (`xbot db psql`, DuckDB, another tool), `xbot db stop` lets it go")


def _served(version: dict) -> str:
    """Whether a version ranks posts: only one that beats the predict-the-mean baseline and the active
    version is served (``core.predictors``); a rejected one is kept with its reason."""
    return "served" if version["status"] == "active" else version["status"]


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job: a simulated campaign through the real jobs, then reports",
                       description="Starts the embedded Postgres (or uses XBOT_DATABASE_URL), recreates the "
                                   "database xbot_demo (then the workspace's default database), and runs a simulated campaign — plan, post, collect, learn "
                                   "on the schedules — against the in-process sandbox X. Then it runs the notebooks "
                                   "into reports/ and prints followers, FPKI by week, model versions and each "
                                   "experiment's doubly-robust lift beside the scenario's true lift.")
    p.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    p.add_argument("--seed", type=int, default=7, help="seed: the same seed gives the same campaign (default 7)")
    p.add_argument("--scenario", default=None, help="audience scenario TOML (default scenarios/default.toml)")
    p.add_argument("--account-profile", metavar="FILE", default=None,
                   help="run this account profile (e.g. accounts/cooking.toml): its account id, topics, voice, "
                        "hours and caps; the shipped scenario whose audience reads its topics is picked unless "
                        "--scenario is given (default: accounts demo-N on the built-in profile)")
    p.add_argument("--accounts", type=int, default=1, help="accounts to run side by side (default 1)")
    p.add_argument("--policy", default="xbot", choices=["xbot", "random", "heuristic", "oracle"],
                   help="how arms and hours are chosen (default xbot, the learner)")
    p.add_argument("--no-notebooks", action="store_true", help="skip the reports at the end")
    p.set_defaults(func=cmd_demo)
