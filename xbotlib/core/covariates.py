"""What an experiment's lift is adjusted for: the covariate columns built from a decision's stored rows
(``covariate_frame``) and, per experiment, the pre-treatment ones to fit (``lift_covariates``).

Kept apart from ``experiments`` (the registry and assignment) so the registry loads without pandas:
`xbot experiment --help` reads it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from xbotlib.core import vocab
from xbotlib.core.experiments import strip_text_arms

HOOK_COVARIATES = [f"hook_{h}" for h in vocab.HOOK_PATTERNS if h != "plain"]  # 'plain' is the reference
HOUR_COVARIATES = ["hour_sin", "hour_cos"]


def topic_covariates(vocabulary: vocab.Vocabulary) -> list[str]:
    """One column per topic of the account's niche; no topic is the reference."""
    return [f"topic_{t}" for t in vocabulary.topics]


def base_covariates(vocabulary: vocab.Vocabulary) -> list[str]:
    return [*HOOK_COVARIATES, *topic_covariates(vocabulary), *HOUR_COVARIATES, "novelty", "log_followers"]


# the built-in niche's columns
TOPIC_COVARIATES = topic_covariates(vocab.DEFAULT)
BASE_COVARIATES = base_covariates(vocab.DEFAULT)
# Covariates the treatment itself can move: adjusting for them would absorb part of the effect.
# Novelty is measured on the final text, which the text arms and the reply angle change.
POST_TREATMENT: dict[str, frozenset[str]] = {
    "hashtag_1": frozenset({"novelty"}),
    "question_cta": frozenset({"novelty"}),
    "contrarian_reply": frozenset({*HOOK_COVARIATES, "novelty"}),
    "late_evening_slot": frozenset(HOUR_COVARIATES),
}


def covariate_frame(raw: pd.DataFrame, vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> pd.DataFrame:
    """Turn the joined rows into estimator columns (pure; see ``lift_frame``). ``vocabulary``: the account's
    niche (its hook rules read the text, its topics make the topic columns); ``df.attrs["vocabulary"]`` keeps
    it for ``lift_covariates``."""
    df = raw.copy()
    df["treatment"] = (df["arm"] == "treatment").astype(int)
    # stored propensity is P(arm drawn); the estimators want P(treatment)
    df["propensity"] = np.where(df["treatment"] == 1, df["propensity"].astype(float), 1 - df["propensity"].astype(float))
    df["hook"] = [vocabulary.detect_hook(strip_text_arms(c, vocabulary)) for c in df["content"]]
    for name in HOOK_COVARIATES:
        df[name] = (df["hook"] == name.removeprefix("hook_")).astype(float)
    for name in topic_covariates(vocabulary):
        df[name] = (df["topic"] == name.removeprefix("topic_")).astype(float)
    angle = 2 * np.pi * df["local_hour"].astype(float) / 24
    df["hour_sin"], df["hour_cos"] = np.sin(angle), np.cos(angle)
    novelty = pd.to_numeric(df["novelty"], errors="coerce")
    df["novelty"] = novelty.fillna(novelty.mean() if novelty.notna().any() else 0.0)
    df["log_followers"] = np.log1p(pd.to_numeric(df["followers"], errors="coerce").fillna(0).astype(float))
    for col in ("reward_composite", "fpki", "er", "follows"):
        df[col] = df[col].astype(float)
    df = df.drop(columns=["content"])
    df.attrs["vocabulary"] = vocabulary
    return df


def lift_covariates(df: pd.DataFrame, experiment_id: str) -> list[str]:
    """Covariates to adjust for in ``experiment_id``: pre-treatment ones that vary in ``df`` (topic columns
    of the vocabulary ``covariate_frame`` built them with)."""
    excluded = POST_TREATMENT.get(experiment_id, frozenset())
    return [c for c in base_covariates(df.attrs.get("vocabulary", vocab.DEFAULT))
            if c not in excluded and c in df.columns and len(df) > 0 and df[c].nunique() > 1]
