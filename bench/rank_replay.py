"""How much repetition fatigue the plan step's choice among a post's candidate texts leaves, in seconds.

The plan job asks the generator for a few texts of the chosen hook and topic and queues one
(``jobs.plan._select``, ordered by ``plan._rank``). Which one decides how much the text repeats the
account's recent posts, and the sandbox audience reaches fewer people with a repeat
(``sim.audience.fatigue_multiplier``: token Jaccard similarity to the last ``window_days``' posts above
an onset). This replays that choice alone, without a database: 4 posts a day, topics taken least
recently used (as ``plan._choose_topic``), the hook ``did_you_know`` with probability 3/4 else another
(the best fixed rule's mix), ``PLAN_CANDIDATES`` = 4 texts from the template generator per post, and
prints the mean fatigue multiplier on follows (reach × engagement per impression, so squared) of the
texts each ranking picks:

- arbitrary: the generator's first text (what the content predictor amounts to here: it has little to
  tell four texts of one hook and topic apart);
- novelty 30 d / 14 d: the text farthest (local-embedding cosine) from any post of the last 30 / 14 days;
- plan._rank: the shipped order (distance from the last week's posts up to ``REPEAT_NOVELTY``; past the
  line, ties are left to the predictor, here the first text);
- sandbox best: post by post, the text the sandbox itself would fatigue least (what no product can see;
  greedy, so not a bound).

Default world, 60 days, seeds 0-3 (2026-12-03, 70 s): 0.886, 0.936, 0.962, 0.998, 0.997.

    .venv/bin/python bench/rank_replay.py --seeds 4
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xbotlib.app.cli.options import at_least  # noqa: E402

from xbotlib.clients.generation.templates import TemplateGenerator  # noqa: E402
from xbotlib.core.features import LocalEmbedder, novelty  # noqa: E402
from xbotlib.core.vocab import HOOK_PATTERNS  # noqa: E402
from xbotlib.jobs import plan  # noqa: E402
from xbotlib.sim.audience import fatigue_multiplier, jaccard, tokens  # noqa: E402
from xbotlib.sim.scenario import load_scenario  # noqa: E402

POSTS_PER_DAY, CANDIDATES, BEST_SHARE = 4, 4, 0.75
RANKINGS = ("arbitrary", "novelty 30 d", "novelty 14 d", "plan._rank", "sandbox best")


def _pick(ranking: str, emb: np.ndarray, ages: np.ndarray, past: np.ndarray | None, sims: list[float]) -> int:
    """The index of the candidate ``ranking`` queues; ``past`` the embeddings of earlier posts, ``ages`` their
    ages in days, ``sims`` each candidate's sandbox similarity."""
    def within(days: float) -> np.ndarray | None:
        return None if past is None or not (ages <= days).any() else past[ages <= days]

    if ranking == "arbitrary":
        return 0
    if ranking.startswith("novelty"):
        recent = within(float(ranking.split()[1]))
        return int(np.argmax([novelty(e, recent) for e in emb]))
    if ranking == "plan._rank":
        week = within(plan.RECENT_DAYS)
        keys = [min(novelty(e, week), plan.REPEAT_NOVELTY) for e in emb]
        return keys.index(max(keys))  # the first of the tied: the predictor's choice is arbitrary here
    return int(np.argmin(sims))


def replay(ranking: str, seed: int, days: int, scenario) -> float:
    """The mean fatigue multiplier on follows of the posts ``ranking`` picks over ``days``."""
    rng, gen, embedder = np.random.default_rng(seed), TemplateGenerator(seed), LocalEmbedder()
    topics = list(gen.profile.topic_names)
    others = [h for h in HOOK_PATTERNS if h != "did_you_know" and h in gen.profile.hooks]
    times: list[float] = []
    words: list[frozenset] = []
    vectors: list[np.ndarray] = []
    recent_topics: list[str] = []
    multipliers = []
    for n in range(days * POSTS_PER_DAY):
        t = n / POSTS_PER_DAY
        hook = "did_you_know" if rng.random() < BEST_SHARE else others[int(rng.integers(len(others)))]
        last = {tp: (recent_topics[::-1].index(tp) if tp in recent_topics else len(recent_topics)) for tp in topics}
        oldest = [tp for tp in topics if last[tp] == max(last.values())]
        topic = oldest[int(rng.integers(len(oldest)))]
        texts = [c.text for c in gen.candidates(hook, topic, CANDIDATES, rng=rng)]
        emb = embedder.embed(texts)
        ages = t - np.array(times)
        window = [w for w, a in zip(words, ages) if a <= scenario.fatigue.window_days]
        sims = [max((jaccard(tokens(x), w) for w in window), default=0.0) for x in texts]
        k = _pick(ranking, emb, ages, np.array(vectors) if vectors else None, sims)
        multipliers.append(fatigue_multiplier(scenario, sims[k]) ** 2)
        times.append(t)
        words.append(tokens(texts[k]))
        vectors.append(emb[k])
        recent_topics.append(topic)
    return float(np.mean(multipliers))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=None, help="shipped name or TOML path (default: default)")
    ap.add_argument("--seeds", type=at_least(1), default=4, help="seeds 0..N-1 (default 4)")
    ap.add_argument("--days", type=at_least(1), default=60, help="simulated days (default 60)")
    a = ap.parse_args(argv)
    if a.seeds < 1 or a.days < 1:
        ap.error(f"--seeds and --days must be at least 1, got {a.seeds} and {a.days}")
    scenario = load_scenario(a.scenario)
    print(f"scenario {scenario.name}, {a.days} days, seeds 0-{a.seeds - 1}: mean fatigue multiplier on follows\n")
    print("| ranking | mean | per seed |\n| --- | ---: | --- |")
    for ranking in RANKINGS:
        values = [replay(ranking, s, a.days, scenario) for s in range(a.seeds)]
        print(f"| {ranking} | {np.mean(values):.3f} | {' '.join(f'{v:.3f}' for v in values)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
