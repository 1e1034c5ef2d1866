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
TOPIC_COVARIATES = [f"topic_{t}" for t in vocab.TOPICS]  # no topic is the reference
HOUR_COVARIATES = ["hour_sin", "hour_cos"]
BASE_COVARIATES = [*HOOK_COVARIATES, *TOPIC_COVARIATES, *HOUR_COVARIATES, "novelty", "log_followers"]
# Covariates the treatment itself can move: adjusting for them would absorb part of the effect.
# Novelty is measured on the final text, which the text arms and the reply angle change.
POST_TREATMENT: dict[str, frozenset[str]] = {
    "hashtag_1": frozenset({"novelty"}),
    "question_cta": frozenset({"novelty"}),
    "contrarian_reply": frozenset({*HOOK_COVARIATES, "novelty"}),
    "late_evening_slot": frozenset(HOUR_COVARIATES),
}


def covariate_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Turn the joined rows into estimator columns (pure; see ``lift_frame``)."""
    df = raw.copy()
    df["treatment"] = (df["arm"] == "treatment").astype(int)
    # stored propensity is P(arm drawn); the estimators want P(treatment)
    df["propensity"] = np.where(df["treatment"] == 1, df["propensity"].astype(float), 1 - df["propensity"].astype(float))
    df["hook"] = [vocab.detect_hook(strip_text_arms(c)) for c in df["content"]]
    for name in HOOK_COVARIATES:
        df[name] = (df["hook"] == name.removeprefix("hook_")).astype(float)
    for name in TOPIC_COVARIATES:
        df[name] = (df["topic"] == name.removeprefix("topic_")).astype(float)
    angle = 2 * np.pi * df["local_hour"].astype(float) / 24
    df["hour_sin"], df["hour_cos"] = np.sin(angle), np.cos(angle)
    novelty = pd.to_numeric(df["novelty"], errors="coerce")
    df["novelty"] = novelty.fillna(novelty.mean() if novelty.notna().any() else 0.0)
    df["log_followers"] = np.log1p(pd.to_numeric(df["followers"], errors="coerce").fillna(0).astype(float))
    for col in ("reward_composite", "fpki", "er", "follows"):
        df[col] = df[col].astype(float)
    return df.drop(columns=["content"])


def lift_covariates(df: pd.DataFrame, experiment_id: str) -> list[str]:
    """Covariates to adjust for in ``experiment_id``: pre-treatment ones that vary in ``df``."""
    excluded = POST_TREATMENT.get(experiment_id, frozenset())
    return [c for c in BASE_COVARIATES
            if c not in excluded and c in df.columns and len(df) > 0 and df[c].nunique() > 1]
