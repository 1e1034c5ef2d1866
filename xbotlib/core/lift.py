"""Lift of a randomised experiment: difference in means, IPW and doubly-robust AIPW.

Pure functions over a pandas DataFrame with one row per decision:

``treatment``
    1 if the decision got the treatment arm, 0 for control.
``propensity``
    P(treatment = 1) at assignment time, as stored (the experiment's allocation then). Stored per
    decision because an operator may change the allocation mid-experiment.
outcome column
    e.g. ``reward_composite`` or ``fpki`` (T+24h).
covariates
    numeric pre-treatment columns (hook one-hots, hour sin/cos, log followers …). A covariate the
    treatment can move (the posting hour in a timing experiment) must not be used: it would absorb
    part of the effect. ``covariates.lift_covariates`` picks them per experiment.

Every estimator returns an ``Estimate`` with a normal 95% interval from its influence function.
Because assignment is randomised with known propensities, all three are unbiased for the average
treatment effect; AIPW uses outcome models (cross-fitted, so the same rows never both fit and
score a model) to remove the outcome variance the covariates explain, which is most of it here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

Z95 = float(stats.norm.ppf(0.975))
MODELS = ("ridge", "ols", "lightgbm")


@dataclass(frozen=True)
class Estimate:
    """An average treatment effect (treatment minus control) with its standard error and 95% CI."""
    estimator: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n_treatment: int
    n_control: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _estimate(name: str, tau: float, se: float, t: np.ndarray) -> Estimate:
    n_t = int(t.sum())
    return Estimate(name, float(tau), float(se), float(tau - Z95 * se), float(tau + Z95 * se), n_t, int(len(t) - n_t))


# ----------------------------------------------------------------------------- validation

def validate(df: pd.DataFrame, outcome: str, covariates: Sequence[str] = (), *, need_propensity: bool = True) -> None:
    """Raise ``ValueError`` naming the bad column/value and the fix; return None when usable."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, got {type(df).__name__} (build it with experiments.lift_frame)")
    needed = ["treatment", outcome, *covariates] + (["propensity"] if need_propensity else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing} (the frame has {list(df.columns)}; "
                         "add them or pass the right outcome/covariates)")
    for col in [outcome, *covariates]:
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            bad = _plain(df.loc[values.isna(), col].iloc[0])
            raise ValueError(f"column {col!r} has a missing or non-numeric value {bad!r} "
                             "(drop or impute those rows before estimating)")
    t = df["treatment"]
    if not t.isin([0, 1]).all():
        bad = _plain(t[~t.isin([0, 1])].iloc[0])
        raise ValueError(f"column 'treatment' must be 0/1, found {bad!r} (map arm 'treatment' to 1, 'control' to 0)")
    if need_propensity:
        e = pd.to_numeric(df["propensity"], errors="coerce")
        outside = e.isna() | (e <= 0) | (e >= 1)
        if outside.any():
            bad = _plain(df.loc[outside, "propensity"].iloc[0])
            raise ValueError(f"column 'propensity' must be strictly between 0 and 1, found {bad!r} "
                             "(store P(treatment=1) at assignment, i.e. the allocation)")
    n_t = int((t == 1).sum())
    n_c = int((t == 0).sum())
    if n_t < 2 or n_c < 2:
        raise ValueError(f"need at least 2 units in each arm, have n_treatment={n_t}, n_control={n_c} "
                         "(collect more outcomes before estimating lift)")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value, so messages read ``2`` rather than ``np.int64(2)``."""
    return value.item() if isinstance(value, np.generic) else value


def _arrays(df: pd.DataFrame, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    return df["treatment"].to_numpy(dtype=float), df[outcome].to_numpy(dtype=float)


def _se(psi: np.ndarray) -> float:
    """Standard error of a mean of influence-function values."""
    return float(np.std(psi, ddof=1) / np.sqrt(len(psi)))


# ----------------------------------------------------------------------------- estimators

def difference_in_means(df: pd.DataFrame, outcome: str) -> Estimate:
    """Mean outcome of treated minus control, with Welch's (unequal-variance) standard error."""
    validate(df, outcome, need_propensity=False)
    t, y = _arrays(df, outcome)
    y1, y0 = y[t == 1], y[t == 0]
    se = np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    return _estimate("difference_in_means", y1.mean() - y0.mean(), se, t)


def ipw(df: pd.DataFrame, outcome: str, *, normalised: bool = True) -> Estimate:
    """Inverse-propensity weighting with the stored propensities.

    ``normalised=True`` (default) is the Hajek estimator: each arm's weighted mean, with weights
    1/e and 1/(1-e) normalised to sum to one. It is invariant to shifting the outcome, which the
    Horvitz-Thompson form (``normalised=False``) is not, so it has far lower variance when the
    outcome is not centred on zero. With a constant allocation it equals the difference in means.
    SE from the influence function of the chosen form.
    """
    validate(df, outcome)
    t, y = _arrays(df, outcome)
    e = df["propensity"].to_numpy(dtype=float)
    w1, w0 = t / e, (1 - t) / (1 - e)
    if normalised:
        mu1 = np.sum(w1 * y) / np.sum(w1)
        mu0 = np.sum(w0 * y) / np.sum(w0)
        psi = w1 * (y - mu1) / w1.mean() - w0 * (y - mu0) / w0.mean()
        return _estimate("ipw_hajek", mu1 - mu0, _se(psi), t)
    psi = w1 * y - w0 * y
    return _estimate("ipw_horvitz_thompson", psi.mean(), _se(psi), t)


def aipw(df: pd.DataFrame, outcome: str, covariates: Sequence[str], n_folds: int = 5, seed: int = 0,
         model: Any = "ridge", *, propensity: str = "stored", ridge_alpha: float | None = None) -> Estimate:
    """Doubly-robust augmented IPW with cross-fitted outcome models.

    Rows are split into ``n_folds`` folds (stratified by arm, shuffled with ``seed``); the outcome
    models mu1 (on treated rows) and mu0 (on control rows) are fitted on the other folds and predict
    the held-out fold. Per row::

        psi = mu1(x) - mu0(x) + t (y - mu1(x)) / e - (1 - t) (y - mu0(x)) / (1 - e)

    The estimate is mean(psi); SE = sd(psi)/sqrt(n); 95% CI normal.

    Parameters
    ----------
    model : "ridge" (closed form, standardised covariates; ``ridge_alpha``, or None to choose it per
        fit by exact leave-one-out error, ``loo_ridge_alpha``), "ols", "lightgbm", or
        any scikit-learn regressor (cloned per fold).
    propensity : "stored" uses the ``propensity`` column (known in a randomised experiment);
        "crossfit" fits a cross-fitted logistic model of treatment on the covariates instead (for
        data without stored propensities), clipped to [0.01, 0.99].
    n_folds : reduced to the size of the smaller arm when that is smaller (at least 2).
    """
    t, y, mu1, mu0, e = _crossfit(df, outcome, covariates, n_folds, seed, model, propensity, ridge_alpha)
    psi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
    name = f"aipw_{model if isinstance(model, str) else type(model).__name__.lower()}"
    return _estimate(name, psi.mean(), _se(psi), t)


def aipw_potential_outcomes(df: pd.DataFrame, outcome: str, covariates: Sequence[str], n_folds: int = 5,
                            seed: int = 0, model: Any = "ridge") -> tuple[np.ndarray, np.ndarray]:
    """Per-row doubly-robust values of the two potential-outcome means, from the same cross-fit as ``aipw``.

    Returns ``(phi1, phi0)``, arrays of shape (n,)::

        phi1 = mu1(x) + t (y - mu1(x)) / e        phi0 = mu0(x) + (1 - t) (y - mu0(x)) / (1 - e)

    mean(phi1) and mean(phi0) estimate E[Y(1)] and E[Y(0)]; phi1 - phi0 is ``aipw``'s psi (up to
    rounding), so their means differ by exactly the AIPW estimate for the same seed and model.
    """
    t, y, mu1, mu0, e = _crossfit(df, outcome, covariates, n_folds, seed, model, "stored", None)
    return mu1 + t * (y - mu1) / e, mu0 + (1 - t) * (y - mu0) / (1 - e)


def _crossfit(df: pd.DataFrame, outcome: str, covariates: Sequence[str], n_folds: int, seed: int, model: Any,
              propensity: str, ridge_alpha: float | None) -> tuple[np.ndarray, ...]:
    """Validate, then cross-fit: (t, y, mu1, mu0, e), each of shape (n,)."""
    if propensity not in ("stored", "crossfit"):
        raise ValueError(f"propensity must be 'stored' or 'crossfit', got {propensity!r}")
    covariates = list(covariates)
    validate(df, outcome, covariates, need_propensity=propensity == "stored")
    if isinstance(model, str) and model not in MODELS:
        raise ValueError(f"unknown outcome model {model!r} (expected one of {', '.join(MODELS)} "
                         "or a scikit-learn regressor)")
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    t, y = _arrays(df, outcome)
    x = df[covariates].to_numpy(dtype=float) if covariates else np.zeros((len(df), 0))
    folds = stratified_folds(t, n_folds, seed)
    mu1, mu0 = np.empty_like(y), np.empty_like(y)
    e = df["propensity"].to_numpy(dtype=float) if propensity == "stored" else np.empty_like(y)
    for k in np.unique(folds):
        test, train = folds == k, folds != k
        for arm, mu in ((1, mu1), (0, mu0)):
            fit_rows = train & (t == arm)
            mu[test] = _fit_predict(model, x[fit_rows], y[fit_rows], x[test], seed, ridge_alpha)
        if propensity == "crossfit":
            e[test] = _propensity_fit_predict(x[train], t[train], x[test])
    if propensity == "crossfit":
        e = np.clip(e, 0.01, 0.99)
    return t, y, mu1, mu0, e


def stratified_folds(t: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per row, each arm spread evenly over the folds so every training set has both arms."""
    t = np.asarray(t)
    k = max(2, min(n_folds, int((t == 1).sum()), int((t == 0).sum())))
    rng = np.random.default_rng(seed)
    folds = np.empty(len(t), dtype=int)
    for arm in (0, 1):
        idx = np.flatnonzero(t == arm)
        folds[rng.permutation(idx)] = np.arange(len(idx)) % k
    return folds


def _fit_predict(model: Any, x: np.ndarray, y: np.ndarray, x_new: np.ndarray, seed: int,
                 alpha: float | None) -> np.ndarray:
    if len(y) == 0:  # cannot happen with >= 2 per arm and stratified folds; kept as a guard
        raise ValueError("an outcome model has no training rows (need at least 2 units in each arm)")
    if x.shape[1] == 0:
        return np.full(len(x_new), y.mean())
    if model == "ols":
        return _linear_fit_predict(x, y, x_new, alpha=0.0)
    if model == "ridge":
        return _linear_fit_predict(x, y, x_new, alpha=alpha)
    if model == "lightgbm":
        # imported here: LightGBM is optional (a broken install fails this model only) and ~1.8 s of start-up
        import lightgbm as lgb
        reg = lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15,
                                min_child_samples=max(2, min(20, len(y) // 10)), subsample=0.8, subsample_freq=1,
                                random_state=seed, n_jobs=1, verbose=-1)
        reg.fit(x, y)
        return reg.predict(x_new)
    return np.asarray(clone(model).fit(x, y).predict(x_new), dtype=float)


def _linear_fit_predict(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, alpha: float | None) -> np.ndarray:
    """Least squares (alpha=0) or ridge on standardised columns; the intercept is never penalised.

    Centring makes the intercept the training mean; ``lstsq`` gives the minimum-norm solution, so
    collinear one-hot columns are harmless.
    """
    x_mean, y_mean = x.mean(axis=0), y.mean()
    if alpha is None:
        alpha = loo_ridge_alpha(x, y)
    scale = x.std(axis=0)
    # a column (nearly) constant in the training rows carries no information there; standardising it by a
    # float-noise spread would blow predictions up on rows where it differs, so it gets no weight instead
    scale[scale <= 1e-9 * np.maximum(1.0, np.abs(x_mean))] = np.inf
    xs = (x - x_mean) / scale
    if alpha > 0:
        p = xs.shape[1]
        beta = np.linalg.solve(xs.T @ xs + alpha * np.eye(p), xs.T @ (y - y_mean))
    else:
        beta = np.linalg.lstsq(xs, y - y_mean, rcond=None)[0]
    return y_mean + ((x_new - x_mean) / scale) @ beta


RIDGE_ALPHAS = (0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 1e4)


def loo_ridge_alpha(x: np.ndarray, y: np.ndarray, alphas=RIDGE_ALPHAS) -> float:
    """The ridge penalty with the smallest exact leave-one-out error (closed form via one SVD).

    Per-post outcomes here are mostly noise; a fixed small penalty lets ~30 covariates chase it and
    the doubly-robust estimate gets noisier than IPW. Columns are standardised as in the fit.
    """
    if len(y) < 3:
        return float(alphas[-1])
    x_mean, y_mean = x.mean(axis=0), y.mean()
    scale = x.std(axis=0)
    scale[scale <= 1e-9 * np.maximum(1.0, np.abs(x_mean))] = np.inf
    xs, yc = (x - x_mean) / scale, y - y_mean
    u, sv, _ = np.linalg.svd(xs, full_matrices=False)
    uty = u.T @ yc
    n = len(y)
    best, best_err = float(alphas[0]), np.inf
    for a in alphas:
        shrink = sv ** 2 / (sv ** 2 + a)
        fitted = u @ (shrink * uty)
        leverage = (u ** 2) @ shrink + 1.0 / n  # the intercept (centring) adds 1/n
        err = np.mean(((yc - fitted) / np.clip(1.0 - leverage, 1e-6, None)) ** 2)
        if err < best_err:
            best, best_err = float(a), err
    return best


def _propensity_fit_predict(x: np.ndarray, t: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    if x.shape[1] == 0:
        return np.full(len(x_new), t.mean())
    return LogisticRegression(max_iter=1000).fit(x, t).predict_proba(x_new)[:, 1]


# ----------------------------------------------------------------------------- tables for notebooks

def lift_table(df: pd.DataFrame, outcomes: Sequence[str] = ("reward_composite", "fpki"),
               covariates: Sequence[str] = (), seed: int = 0, *, model: Any = "ridge", n_folds: int = 5) -> pd.DataFrame:
    """One row per (outcome, estimator): difference in means, Hajek IPW and AIPW.

    Columns: outcome, estimator, estimate, se, ci_low, ci_high, n_treatment, n_control,
    control_mean (to read the estimate as a relative lift).
    """
    rows = []
    for outcome in outcomes:
        validate(df, outcome, covariates)
        control_mean = float(df.loc[df["treatment"] == 0, outcome].mean())
        for est in (difference_in_means(df, outcome), ipw(df, outcome),
                    aipw(df, outcome, covariates, n_folds=n_folds, seed=seed, model=model)):
            rows.append({"outcome": outcome, **est.to_dict(), "control_mean": control_mean})
    return pd.DataFrame(rows)


def balance_table(df: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Covariate balance between arms: means and standardised mean differences.

    smd = (mean_t - mean_c) / sqrt((var_t + var_c) / 2); 0 for a covariate constant in both arms.
    In a randomised experiment |smd| stays small (rule of thumb < 0.1); a large one is a sign the
    assignment or the join that built the frame is broken. ``smd_weighted`` uses the IPW weights.
    """
    validate(df, "treatment", covariates)
    t = df["treatment"].to_numpy(dtype=float)
    e = df["propensity"].to_numpy(dtype=float)
    w = np.where(t == 1, 1 / e, 1 / (1 - e))
    rows = []
    for col in covariates:
        x = df[col].to_numpy(dtype=float)
        x1, x0, w1, w0 = x[t == 1], x[t == 0], w[t == 1], w[t == 0]
        pooled = np.sqrt((x1.var(ddof=1) + x0.var(ddof=1)) / 2)
        m1w, m0w = np.average(x1, weights=w1), np.average(x0, weights=w0)
        rows.append({"covariate": col, "mean_treatment": x1.mean(), "mean_control": x0.mean(),
                     "smd": _ratio(x1.mean() - x0.mean(), pooled),
                     "smd_weighted": _ratio(m1w - m0w, pooled)})
    return pd.DataFrame(rows, columns=["covariate", "mean_treatment", "mean_control", "smd", "smd_weighted"])


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def overlap_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per arm: units, propensity range, and how concentrated the IPW weights are.

    ``ess`` is Kish's effective sample size (sum w)^2 / sum w^2; ``max_weight_share`` the largest
    single weight over the arm's total. Propensities near 0 or 1 show up here before they blow up
    the IPW variance.
    """
    validate(df, "treatment")
    t = df["treatment"].to_numpy(dtype=float)
    e = df["propensity"].to_numpy(dtype=float)
    rows = []
    for arm, mask, w in (("treatment", t == 1, 1 / e), ("control", t == 0, 1 / (1 - e))):
        wa, ea = w[mask], e[mask]
        rows.append({"arm": arm, "n": int(mask.sum()), "propensity_min": ea.min(), "propensity_median": float(np.median(ea)),
                     "propensity_max": ea.max(), "ess": wa.sum() ** 2 / np.sum(wa ** 2),
                     "max_weight_share": wa.max() / wa.sum()})
    return pd.DataFrame(rows)
