"""Check xbot's off-policy estimators against Open Bandit Pipeline (obp 0.5.7) on the same arrays.

    PYTHONPATH=$PWD .venv/bin/python bench/obp_check.py [--days 30] [--seed 0]

1. runs an xbot campaign of ``--days`` days in the sandbox (a throw-away database) and replays its log for
   four candidates (fixed, random, heuristic, xbot) exactly as `xbot ope` does
   (``xbotlib.app.analysis.ope.review_decisions``): reward, action, pscore, action_dist and the DR reward
   model's q_hat;
2. hands those arrays to obp's DoublyRobust, InverseProbabilityWeighting and
   SelfNormalizedInverseProbabilityWeighting in obp's own virtual environment, and prints the largest
   absolute difference of each point estimate (the check passes at <= 1e-12; exit code 1 otherwise).

obp 0.5.7 declares Python < 3.11 and pins numpy 1.23.5, scipy 1.9.3, scikit-learn 1.1.3, pandas 1.5.2 and
torch 1.12 (no wheel for Python 3.11): it gets its own venv, built on first use under
``$XDG_CACHE_HOME/xbot/obp-0.5.7`` (default ``~/.cache``; ``--venv`` elsewhere): obp with
``--no-deps --ignore-requires-python``, then what ``import obp.ope`` needs — obp's pins where a Python 3.11
wheel exists, and the oldest torch this machine's pip can install for 3.11 (obp imports torch in
``obp/utils.py``; its estimators do not use it). Only obp's point estimates are compared: its intervals are
bootstrap ones, ours influence-function ones (``xbotlib.core.ope``).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OBP = "obp==0.5.7"
# what `import obp.ope` needs, at obp's pins where they install on Python 3.11 (see the module docstring)
# torch: the index's newest for Python 3.11 unless OBP_TORCH names another (e.g. a CPU-only wheel at hand, which
# saves the ~5 GB of CUDA libraries PyPI's Linux torch brings along)
OBP_PINS = ("numpy==1.23.5", "scipy==1.9.3", "scikit-learn==1.1.3", "pandas==1.5.2", "matplotlib==3.6.3",
            "seaborn==0.11.2", "tqdm", "PyYAML==6.0.1", os.environ.get("OBP_TORCH", "torch"))
TOLERANCE = 1e-12
CANDIDATES = ("fixed", "random", "heuristic", "xbot")  # fixed: the scenario's best (hook, hour), as in the benches

OBP_SIDE = r"""
import json, sys
import numpy as np
from obp.ope import DoublyRobust, InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting
out = {}
for path in sys.argv[1:]:
    z = np.load(path)
    kw = dict(reward=z["reward"], action=z["action"], pscore=z["pscore"], action_dist=z["action_dist"][:, :, None])
    out[path] = {"DR": DoublyRobust().estimate_policy_value(
                     estimated_rewards_by_reg_model=z["q_hat"][:, :, None], **kw),
                 "IPW": InverseProbabilityWeighting().estimate_policy_value(**kw),
                 "SNIPW": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw)}
print(json.dumps({k: {e: float(v) for e, v in d.items()} for k, d in out.items()}))
"""


def default_venv() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xbot" / "obp-0.5.7"


def ensure_venv(venv: Path) -> Path:
    """The venv's python, after building the venv if ``import obp.ope`` does not work in it yet."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import obp.ope"], capture_output=True).returncode == 0:
        return python
    print(f"building obp's venv in {venv} (once; a few minutes)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *OBP_PINS], check=True)
    subprocess.run([*pip, "--no-deps", "--ignore-requires-python", OBP], check=True)
    check = subprocess.run([python, "-c", "import obp, obp.ope; print(obp.__version__)"], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"obp's venv {venv} was built but `import obp.ope` fails:\n{check.stderr[-2000:]}")
    return python


def campaign_arrays(days: int, seed: int, out_dir: Path) -> dict[str, tuple[Path, dict]]:
    """Run an xbot campaign, replay it for each candidate; {candidate: (npz path, our estimates)}."""
    # the project's own modules: this script also runs (its obp side) where they are not importable
    from xbotlib.app.analysis.ope import review_decisions
    from xbotlib.devtools.bench import bench_campaign
    from xbotlib.devtools.testing import TestPostgres
    from xbotlib.sim.oracle import Oracle
    from xbotlib.sim.policies import make_policy
    from xbotlib.sim.scenario import load_scenario
    from xbotlib.store.db import Database
    from xbotlib.store.ope import logged_decisions
    from xbotlib.store.queue import account_created_at

    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    try:
        with Database.from_url(pg.fresh_database(), pool_max=3) as db:
            run = bench_campaign(db, "xbot", seed, days, None)
            account = run.account_ids[0]
            ctx = run.contexts[0]
            with db.connection() as conn:
                decisions = logged_decisions(conn, account, ctx.world)
                created = account_created_at(conn, account)
    finally:
        pg.drop_all()
    settings = ctx.settings
    out = {}
    best = Oracle(load_scenario(None)).best_choice()
    for name in CANDIDATES:
        fixed = best if name == "fixed" else None
        label = name if fixed is None else f"fixed_{fixed[0]}_{fixed[1]}"
        review = review_decisions(decisions, make_policy(name, fixed=fixed), vocabulary=ctx.vocabulary,
                                  posting_hours=settings.posting_hours, rotation_max_run=settings.rotation_max_run,
                                  account_created_at=created, account_id=account, policy_label=label, seed=seed)
        path = out_dir / f"{label}.npz"
        np.savez(path, **review.arrays)
        out[label] = (path, {e.estimator: e.value for e in review.estimates})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30, help="campaign length in simulated days (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    ap.add_argument("--venv", type=Path, default=None, help=f"obp's venv (default {default_venv()})")
    args = ap.parse_args(argv)
    python = ensure_venv(args.venv or default_venv())
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xbot_obp_") as tmp:
        ours = campaign_arrays(args.days, args.seed, Path(tmp))
        res = subprocess.run([python, "-c", OBP_SIDE, *[str(p) for p, _ in ours.values()]], capture_output=True,
                             text=True)
        if res.returncode != 0:
            raise SystemExit(f"obp failed:\n{res.stderr[-3000:]}")
        theirs = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"obp 0.5.7 vs xbotlib.core.ope on a {args.days}-day xbot campaign (seed {args.seed}), "
          f"{time.perf_counter() - t0:.0f} s, load {open('/proc/loadavg').read().split()[0]}")
    print(f"{'candidate':<22} {'estimator':<6} {'xbot':>12} {'obp':>12} {'abs diff':>10}")
    worst = 0.0
    for label, (path, est) in ours.items():
        for name, value in est.items():
            other = theirs[str(path)][name]
            # both undefined (SNIPW when the candidate never takes a logged action) is agreement; one alone is not
            diff = 0.0 if math.isnan(value) and math.isnan(other) else abs(value - other)
            worst = max(worst, diff) if not math.isnan(diff) else math.inf
            print(f"{label:<22} {name:<6} {value:>12.6f} {other:>12.6f} {diff:>10.2e}")
    ok = worst <= TOLERANCE
    print(f"max abs difference {worst:.2e} ({'within' if ok else 'OVER'} {TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
