"""Predictor training time on synthetic outcome rows with the real feature shapes.

    python bench/bench_train.py [--sizes 10000 100000] [--seed 0] [--no-cv]

Rows are real feature records (template texts read by ``features.extract_features``, a pool of
distinct texts re-sampled with random posting hours) turned into the predictors' matrix by
``features.feature_matrix`` — FEATURE_NAMES columns, as the learn job sees them — with a synthetic
reward (hook and hour effects + noise) and exposure weights from synthetic impressions. Timed:
one ridge fit, one LightGBM fit, and the learn job's full training step
(``predictors.train_with_fallback``: 5-fold CV of ridge and LightGBM + the final fit).
Prints a Markdown table with machine and date.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from xbotlib.app.cli.options import at_least
from xbotlib.core import vocab
from xbotlib.core.features import FEATURE_NAMES, LocalEmbedder, extract_features, feature_matrix
from xbotlib.core.predictors import LightGBMReward, RidgeReward, train_with_fallback
from xbotlib.core.reward import exposure_weight
from xbotlib.devtools.bench import machine
from xbotlib.clients.generation import TemplateGenerator


def feature_pool(seed: int, per_cell: int = 4) -> list[dict]:
    gen, rng, emb = TemplateGenerator(seed), np.random.default_rng(seed), LocalEmbedder()
    texts = [c.text for h in vocab.HOOK_PATTERNS for t in vocab.TOPICS for c in gen.candidates(h, t, per_cell, rng=rng)]
    vecs = emb.embed(texts)
    pool = []
    for i, text in enumerate(texts):
        recent = vecs[max(0, i - 20):i] if i else None
        pool.append(extract_features(text, embedding=vecs[i], recent_embeddings=recent, novelty_min=0.15).to_dict())
    return pool


def synthetic_outcomes(n: int, pool: list[dict], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (n, len(FEATURE_NAMES)), y reward, w exposure weight."""
    picks = rng.integers(len(pool), size=n)
    hours = rng.choice(vocab.DEFAULT_POSTING_HOURS, size=n)
    rows = [{**pool[p], "hour": int(h)} for p, h in zip(picks, hours)]
    X = feature_matrix(rows, FEATURE_NAMES)
    hook_effect = {h: e for h, e in zip(vocab.HOOK_PATTERNS, (1.6, 1.3, 1.0, 1.1, 1.2, 0.8))}
    mean = np.array([hook_effect[r["hook"]] for r in rows]) * (1 + 0.3 * np.cos(2 * np.pi * (hours - 11) / 24))
    y = 0.5 * mean + rng.normal(0, 0.4, n)
    impressions = rng.gamma(3.0, 400.0, n)
    w = np.array([exposure_weight(i) for i in impressions])
    return X, y, w


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run(sizes: list[int], seed: int, cv: bool) -> list[dict]:
    rng = np.random.default_rng(seed)
    pool = feature_pool(seed)
    results = []
    for n in sizes:
        X, y, w = synthetic_outcomes(n, pool, rng)
        ridge_s, _ = timed(lambda: RidgeReward().fit(X, y, sample_weight=w))
        lgbm_s, _ = timed(lambda: LightGBMReward(random_state=seed).fit(X, y, sample_weight=w))
        res = {"n": n, "features": X.shape[1], "ridge_s": ridge_s, "lgbm_s": lgbm_s}
        if cv:
            job_s, trained = timed(lambda: train_with_fallback("reward", X, y, w, True, seed=seed))
            res.update(job_s=job_s, chosen=trained.algorithm,
                       ridge_r2=trained.candidates["ridge"]["score"],
                       lgbm_r2=trained.candidates.get("lightgbm", {}).get("score"))
        results.append(res)
    return results


def table(results: list[dict]) -> str:
    lines = [f"predictor training on synthetic outcomes (real feature shapes) — {machine()}", "",
             "| rows | features | ridge fit (s) | LightGBM fit (s) | learn step: 5-fold CV both + fit (s) | chosen | CV R² ridge / LightGBM |",
             "|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        job = f"{r['job_s']:.2f}" if "job_s" in r else "—"
        chosen = r.get("chosen", "—")
        r2 = (f"{r['ridge_r2']:.3f} / {r['lgbm_r2']:.3f}" if r.get("lgbm_r2") is not None
              else (f"{r['ridge_r2']:.3f} / —" if "ridge_r2" in r else "—"))
        lines.append(f"| {r['n']:,} | {r['features']} | {r['ridge_s']:.3f} | {r['lgbm_s']:.2f} | {job} | {chosen} | {r2} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=at_least(1), nargs="+", default=[10_000, 100_000], help="rows to train on")
    ap.add_argument("--seed", type=at_least(0), default=0)
    ap.add_argument("--no-cv", action="store_true", help="skip the learn job's CV step (single fits only)")
    args = ap.parse_args(argv)
    bad = [s for s in args.sizes if s < 10]
    if bad:
        ap.error(f"--sizes must be at least 10 rows each, got {bad}")
    print(table(run(args.sizes, args.seed, not args.no_cv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
