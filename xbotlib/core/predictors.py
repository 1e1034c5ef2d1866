"""Reward and follow predictors, their cross-validated scores, and training with a safe fallback.

scikit-learn shape: ``fit(X, y, sample_weight=None)`` returns self, fitted state ends in ``_``,
``__init__`` only stores parameters, so a notebook swaps ridge for LightGBM in one line.

- ``RidgeReward``: standardised ridge regression of the composite reward (the dependable default).
- ``LogisticFollows``: P(follows >= 1) by standardised logistic regression.
- ``LightGBMReward`` / ``LightGBMFollows``: small, deterministic gradient boosting.
- ``cross_validated_score``: K-fold score vs a predict-the-mean (or base-rate) baseline.
- ``train_with_fallback``: LightGBM when asked and there is enough data, ridge/logistic on any
  LightGBM failure (logged as ``[LEARN_JOB] lightgbm_failed fallback=… error=…``).
- ``dumps`` / ``loads``: pickle bytes for ``predictors.model``; a load failure is a ``ModelLoadError``.
- ``should_train``: when the learn job retrains; ``serving_verdict``: whether a new version is served
  (beats the predict-the-mean baseline and the active version by the margins it explains).

Size: over 400 lines because a model's score and the rules that read it (retrain, serve) belong
together; each section stands alone.
"""
from __future__ import annotations

import functools
import logging
import pickle
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import numpy as np
import sklearn
from scipy.special import expit
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

from xbotlib.logs import tagged

log = logging.getLogger("xbot.predictors")

MIN_LIGHTGBM_SAMPLES = 50
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10,
    "random_state": 0, "n_jobs": 1, "verbose": -1, "deterministic": True, "force_col_wise": True,
}
KINDS = ("reward", "follows")


@functools.cache
def _blas() -> ThreadpoolController:
    # made once (finding the loaded BLAS libraries costs ~5 ms); numpy's and scipy's are loaded by the imports above
    return ThreadpoolController()


def _small_problem(fn: Callable) -> Callable:
    """Run ``fn`` with BLAS on one thread and scikit-learn's per-call input checks off: the learn job's fits.

    Its problems are tiny (n = 5–300 samples, 7–29 features), and on them BLAS threads only cost: each
    call wakes a second thread that then spins, and ``process_time`` counts it. ``xbotlib/__init__.py``
    already gives the process one thread — but only when xbotlib is imported before numpy and the
    operator set no count of their own; this makes the learn job's fits one-threaded whatever the import
    order or the setting (a notebook may import numpy first). Measured on the 36
    trainings of a 60-day growth-bench campaign (load ~5 on 2 cores), the ridge and logistic
    cross-validations took 2.3–3.9 CPU s with two BLAS threads, 1.0–1.2 s with one, and
    0.8–1.0 s with scikit-learn's checks off too; every score and model was bit-identical. A 60-day
    campaign stores the same as one run of the two-thread code (bench/campaign_store.py --compare), but
    two runs of that code differed from each other in the last digits of the logistic cv from n = 230
    on: one thread is also the reproducible setting.
    ``_check_xy`` already rejects non-finite input, and the estimators' parameters are fixed here, so
    ``assume_finite`` / ``skip_parameter_validation`` repeat nothing that can fail. The limit is
    process-wide while ``fn`` runs (threadpoolctl sets the libraries' own thread count) and restored after.
    """
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _blas().limit(limits=1, user_api="blas"), \
                sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return fn(*args, **kwargs)
    return run


def _check_xy(X, y, sample_weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y has shape {y.shape}, expected ({X.shape[0]},) to match X")
    if X.shape[0] == 0:
        raise ValueError("no training samples (X has 0 rows)")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite (found NaN or inf)")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if w.shape != y.shape or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"sample_weight must be {len(y)} finite non-negative numbers with a positive sum")
    return X, y, w


class RidgeReward:
    """Ridge regression of the reward on standardised features."""

    algorithm = "ridge"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X, y, sample_weight=None) -> "RidgeReward":
        X, y, w = _check_xy(X, y, sample_weight)
        self.pipeline_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        self.pipeline_.fit(X, y, ridge__sample_weight=w)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        scaler, ridge = self.pipeline_[0], self.pipeline_[-1]
        return _standardised(scaler, X, self.n_features_in_) @ ridge.coef_ + ridge.intercept_


def _standardised(scaler: StandardScaler, X, n_features: int) -> np.ndarray:
    """``scaler.transform(X)`` for the fitted pipelines' scaler, computed as scikit-learn computes it (minus the
    mean, then divided by the scale) without its checks and dispatch at every call: those were ~90 % of a plan's
    prediction (~0.4 ms a call, three calls a plan), while the arithmetic is a few microseconds. The checks that
    can fail here are kept; the numbers are the pipeline's own, bit for bit (tests/core/test_predictors.py compares
    them, so a scikit-learn upgrade that changes the computation fails there)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must be 2-D with {n_features} feature columns (the model's), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X must be finite to predict (found NaN or inf)")
    return (X - scaler.mean_) / scaler.scale_


class LogisticFollows:
    """P(follows >= 1): logistic regression on standardised features. ``y`` is the follow count
    (or 0/1). With one class only in the data it predicts that (smoothed) base rate."""

    algorithm = "logistic"

    def __init__(self, C: float = 1.0):
        self.C = C

    def fit(self, X, y, sample_weight=None) -> "LogisticFollows":
        X, y, w = _check_xy(X, y, sample_weight)
        labels = (y >= 1).astype(int)
        self.n_features_in_ = X.shape[1]
        if labels.min() == labels.max():
            # nothing to separate: the (smoothed) base rate is the honest prediction
            self.constant_ = float((np.sum(w * labels) + 0.5) / (np.sum(w) + 1.0))
            self.pipeline_ = None
            return self
        self.constant_ = None
        self.pipeline_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
        self.pipeline_.fit(X, labels, logisticregression__sample_weight=w)
        return self

    def predict(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self.pipeline_ is None:
            return np.full(X.shape[0], self.constant_)
        scaler, logistic = self.pipeline_[0], self.pipeline_[-1]
        # LogisticRegression.predict_proba of a binary model: the decision as a column, flattened, then expit
        decision = (_standardised(scaler, X, self.n_features_in_) @ logistic.coef_.T + logistic.intercept_).reshape(-1)
        return expit(decision, out=decision)


class LightGBMReward:
    """Gradient-boosted trees for the reward. ``params`` override ``LIGHTGBM_DEFAULTS``."""

    algorithm = "lightgbm"
    _objective = "regression"

    def __init__(self, **params: Any):
        self.params = params

    def _estimator(self):
        # imported here: optional, so a broken install is a fallback, not an import error (and ~1.8 s of start-up)
        import lightgbm

        return lightgbm.LGBMRegressor(**{**LIGHTGBM_DEFAULTS, **self.params})

    def fit(self, X, y, sample_weight=None) -> "LightGBMReward":
        X, y, w = _check_xy(X, y, sample_weight)
        self.booster_ = self._estimator().fit(X, self._target(y), sample_weight=w)
        self.n_features_in_ = X.shape[1]
        return self

    def _target(self, y: np.ndarray) -> np.ndarray:
        return y

    def predict(self, X) -> np.ndarray:
        return self.booster_.predict(np.asarray(X, dtype=float))

    def fit_for_scoring(self, X, y, sample_weight=None) -> "_ScoringBooster":
        """The boosting of ``fit``, for an out-of-fold score only: returns a predictor that is never stored.

        ``fit`` goes through LightGBM's scikit-learn wrapper, whose training ends by writing the booster
        to text and reading it back (a copy that no longer holds the training data): 13 of ~45 ms of a
        fit on the learn job's data (n = 50–280, 200 trees; the rest is the boosting). A fold model is
        used once and dropped, so here the booster keeps its training state. It is trained on the
        parameters the wrapper would pass (``_process_params``, the wrapper's own translation of
        ``n_jobs``, ``random_state``, the objective …) and predicts exactly the same numbers:
        tests/core/test_predictors.py compares the two, so a LightGBM upgrade that breaks this fails there.
        """
        import lightgbm  # imported here: optional, as in _estimator

        X, y, w = _check_xy(X, y, sample_weight)
        labels = self._target(y)
        estimator = self._estimator()
        params = estimator._process_params(stage="fit")
        metric = params["metric"]  # the wrapper's normalisation (no eval metrics): a list without None
        params["metric"] = [m for m in ([metric] if isinstance(metric, (str, type(None))) else metric) if m is not None]
        booster = lightgbm.train(params, lightgbm.Dataset(X, label=labels, weight=w, params=params),
                                 num_boost_round=estimator.n_estimators, keep_training_booster=True)
        return _ScoringBooster(booster, params["num_threads"])


class LightGBMFollows(LightGBMReward):
    """Gradient-boosted P(follows >= 1)."""

    def _estimator(self):
        import lightgbm  # imported here: optional, as in LightGBMReward._estimator

        return lightgbm.LGBMClassifier(**{**LIGHTGBM_DEFAULTS, **self.params})

    def _target(self, y: np.ndarray) -> np.ndarray:
        labels = (y >= 1).astype(int)
        if labels.min() == labels.max():
            raise ValueError("LightGBMFollows needs both outcomes (some posts with follows, some without)")
        return labels

    def predict(self, X) -> np.ndarray:
        return self.booster_.predict_proba(np.asarray(X, dtype=float))[:, 1]


@dataclass(frozen=True)
class _ScoringBooster:
    """A LightGBM booster fitted by ``fit_for_scoring``: predicts as the fitted model's ``predict`` does (the
    regression value, or P(class 1) — what ``predict_proba(X)[:, 1]`` returns for a binary objective)."""

    booster: Any
    num_threads: int

    def predict(self, X) -> np.ndarray:
        return self.booster.predict(np.asarray(X, dtype=float), num_threads=self.num_threads)


# ----------------------------------------------------------------------------- scoring


def weighted_r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float | None:
    """Weighted R²; None when y does not vary (R² is undefined)."""
    ybar = np.average(y, weights=w)
    ss_tot = float(np.sum(w * (y - ybar) ** 2))
    if ss_tot <= 0:
        return None
    return 1.0 - float(np.sum(w * (y - pred) ** 2)) / ss_tot


def weighted_log_loss(labels: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.sum(w * (labels * np.log(p) + (1 - labels) * np.log(1 - p))) / np.sum(w))


def _auc(labels: np.ndarray, p: np.ndarray, w: np.ndarray) -> float | None:
    if labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, p, sample_weight=w))


@_small_problem
def cross_validated_score(model_factory: Callable[[], Any], X, y, w=None, folds: int = 5, seed: int = 0, *,
                          kind: str = "reward") -> dict[str, Any]:
    """K-fold out-of-fold score of ``model_factory()`` against a baseline fitted per fold.

    kind 'reward': ``score`` = weighted R² of the pooled out-of-fold predictions, ``baseline_score``
    = the same for predicting each training fold's weighted mean; also ``mse``/``baseline_mse``.
    kind 'follows': ``score`` = −weighted log-loss (higher is better) vs the training folds' base
    rate; also ``auc``. ``loss``/``baseline_loss`` (lower is better) compare either kind.
    Fewer than 4 samples: scores are None with a ``reason``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r} (expected one of {KINDS})")
    X, y, w = _check_xy(X, y, w)
    n = len(y)
    if n < 4:
        return {"score": None, "baseline_score": None, "loss": None, "baseline_loss": None, "n": n, "folds": 0,
                "metric": "r2" if kind == "reward" else "neg_log_loss", "reason": f"too few samples ({n} < 4)"}
    k = int(min(folds, n // 2))
    target = y if kind == "reward" else (y >= 1).astype(float)
    splitter = KFold(k, shuffle=True, random_state=seed)
    if kind == "follows" and min(target.sum(), n - target.sum()) >= k:
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    pred = np.zeros(n)
    base = np.zeros(n)
    for train, test in splitter.split(X, target):
        model = _fit_for_scoring(model_factory(), X[train], y[train], w[train])
        pred[test] = model.predict(X[test])
        base[test] = np.average(target[train], weights=w[train]) if w[train].sum() > 0 else target[train].mean()
    if kind == "reward":
        mse = float(np.sum(w * (y - pred) ** 2) / np.sum(w))
        bmse = float(np.sum(w * (y - base) ** 2) / np.sum(w))
        ss_tot = float(np.sum(w * (y - np.average(y, weights=w)) ** 2))
        return {"score": weighted_r2(y, pred, w), "baseline_score": weighted_r2(y, base, w), "loss": mse,
                "baseline_loss": bmse, "mse": mse, "baseline_mse": bmse, "n": n, "folds": k, "metric": "r2",
                **_standard_errors(w * (y - pred) ** 2, w * (y - base) ** 2, ss_tot)}
    ll = weighted_log_loss(target, pred, w)
    bll = weighted_log_loss(target, base, w)
    return {"score": -ll, "baseline_score": -bll, "loss": ll, "baseline_loss": bll, "auc": _auc(target, pred, w),
            "n": n, "folds": k, "metric": "neg_log_loss",
            **_standard_errors(w * _log_losses(target, pred), w * _log_losses(target, base), float(np.sum(w)))}


def _fit_for_scoring(model: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
    """A fold's fitted predictor: the model's cheaper ``fit_for_scoring`` when it has one (same predictions,
    nothing kept for storing), else its ``fit``."""
    fit = getattr(model, "fit_for_scoring", model.fit)
    return fit(X, y, sample_weight=w)


def _log_losses(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def _standard_errors(model_loss: np.ndarray, base_loss: np.ndarray, scale: float) -> dict[str, float | None]:
    """Standard errors of a score ``1 - sum(model_loss) / scale`` (or ``-sum/scale``) and of its gain over
    the baseline, from the spread of the per-sample out-of-fold losses (shape (n,)): the SE of a sum of n
    terms is sqrt(n)·sd. ``gain_se`` pairs each sample's model and baseline loss (what both miss
    cancels out)."""
    n = len(model_loss)
    if scale <= 0 or n < 2:
        return {"score_se": None, "gain_se": None}
    return {"score_se": float(np.sqrt(n) * np.std(model_loss, ddof=1) / scale),
            "gain_se": float(np.sqrt(n) * np.std(base_loss - model_loss, ddof=1) / scale)}


# ----------------------------------------------------------------------------- training


@dataclass
class TrainedModel:
    """A fitted model and how it was chosen. ``cv`` scores the chosen algorithm; ``candidates``
    has the cv of every algorithm tried; ``fallback_reason`` says why LightGBM was not used."""

    model: Any
    algorithm: str
    kind: str
    cv: dict[str, Any]
    n_samples: int
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)
    fallback_reason: str | None = None
    target_column: str | None = None  # what y was, when not implied by kind (a regression on follows)

    @property
    def target(self) -> str:
        if self.target_column:
            return self.target_column
        return "reward_composite" if self.kind == "reward" else "follows"


def _linear_factory(kind: str) -> Callable[[], Any]:
    return RidgeReward if kind == "reward" else LogisticFollows


def _lightgbm_factory(kind: str, params: dict[str, Any]) -> Callable[[], Any]:
    cls = LightGBMReward if kind == "reward" else LightGBMFollows
    return lambda: cls(**params)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


@_small_problem
def train_with_fallback(kind: str, X, y, w, use_lightgbm: bool, logger: logging.Logger | None = None, *,
                        lightgbm_params: dict[str, Any] | None = None, min_lightgbm_samples: int = MIN_LIGHTGBM_SAMPLES,
                        folds: int = 5, seed: int = 0) -> TrainedModel:
    """Train the predictor of ``kind`` ('reward' = composite reward, 'follows' = P(follows >= 1)).

    The linear model (ridge / logistic) is always cross-validated. LightGBM is tried when
    ``use_lightgbm`` and n >= ``min_lightgbm_samples``; it is kept only if its cross-validated loss
    is no worse than the linear model's. Each model is fitted on all the data only when it is the
    one returned (the cross-validation decides; a fit nobody keeps is the costliest part of a
    LightGBM that loses). Any LightGBM error falls back to the linear model and logs
    ``[LEARN_JOB] lightgbm_failed fallback=ridge|logistic error=…``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r} (expected one of {KINDS})")
    logger = logger or log
    X, y, w = _check_xy(X, y, w)
    n = len(y)
    linear = _linear_factory(kind)
    linear_name = linear.algorithm
    candidates = {linear_name: cross_validated_score(linear, X, y, w, folds, seed, kind=kind)}

    def linear_fallback(reason: str) -> TrainedModel:
        return TrainedModel(linear().fit(X, y, sample_weight=w), linear_name, kind, candidates[linear_name], n,
                            candidates, fallback_reason=reason)

    if not use_lightgbm:
        return linear_fallback("lightgbm disabled (LEARN_USE_LIGHTGBM=false)")
    if n < min_lightgbm_samples:
        return linear_fallback(f"too few samples for lightgbm ({n} < {min_lightgbm_samples})")
    params = {"random_state": seed, **(lightgbm_params or {})}
    factory = _lightgbm_factory(kind, params)
    try:
        cv = cross_validated_score(factory, X, y, w, folds, seed, kind=kind)
        linear_loss = candidates[linear_name]["loss"]
        worse = cv["loss"] is not None and linear_loss is not None and cv["loss"] > linear_loss
        model = None if worse else factory().fit(X, y, sample_weight=w)
    except Exception as exc:  # noqa: BLE001 - any LightGBM failure must leave a working predictor
        tagged(logger, "LEARN_JOB", "lightgbm_failed", level=logging.WARNING, fallback=linear_name, error=_one_line(exc))
        return linear_fallback(f"lightgbm failed: {_one_line(exc)}")
    candidates["lightgbm"] = cv
    if worse:
        return linear_fallback(f"lightgbm cv loss {cv['loss']:.6g} worse than {linear_name} {linear_loss:.6g}")
    return TrainedModel(model, "lightgbm", kind, cv, n, candidates)


# ----------------------------------------------------------------------------- serialisation


class ModelLoadError(ValueError):
    """Stored model bytes could not be turned back into a model."""


def dumps(model: Any) -> bytes:
    """Model -> bytes for ``predictors.model`` (pickle; the bytes only ever come from our own database)."""
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes | memoryview | None) -> Any:
    """Bytes -> model; any failure (corrupt bytes, a missing library) is a ``ModelLoadError``."""
    if data is None:
        raise ModelLoadError("no model bytes stored")
    try:
        model = pickle.loads(bytes(data))
    except Exception as exc:  # noqa: BLE001 - unpickling can raise almost anything
        raise ModelLoadError(f"cannot load stored model: {_one_line(exc)}") from exc
    if not hasattr(model, "predict"):
        raise ModelLoadError(f"stored object is a {type(model).__name__}, not a predictor (no predict method)")
    return model


# ----------------------------------------------------------------------------- when to retrain (the learn job's rule)

TIMING_TARGET = "follows"  # the timing predictor learns follows per post
WEEKLY = timedelta(days=7)


@dataclass(frozen=True)
class LastVersion:
    """The newest content predictor of a world: the point the next training starts counting from."""
    version: int
    trained_through: int | None
    trained_at: datetime


@dataclass(frozen=True)
class TrainDecision:
    train: bool
    reason: str
    fresh: int
    need: int


def should_train(fresh: int, last: LastVersion | None, now: datetime, *, min_new: int, retrain_at: int,
                 weekly: timedelta = WEEKLY) -> TrainDecision:
    """Decide whether to (re)train: the rule in the module docstring. Pure."""
    if fresh < min_new:
        return TrainDecision(False, "insufficient_new_samples", fresh, min_new)
    if last is None:
        return TrainDecision(True, "first_version", fresh, min_new)
    if fresh >= retrain_at:
        return TrainDecision(True, "new_samples", fresh, retrain_at)
    if now - last.trained_at >= weekly:
        return TrainDecision(True, "weekly", fresh, min_new)
    return TrainDecision(False, "waiting_for_retrain", fresh, retrain_at)


# ----------------------------------------------------------------------------- when to serve a new version

SERVE_Z = 1.0          # margins in standard errors of the cross-validated score (the "one-SE rule")
SERVE_MIN_GAIN = 0.01  # and never less than this, in the score's units (R² for the learn job's models)


@dataclass(frozen=True)
class ScoreCard:
    """One version's cross-validated score (``cross_validated_score``'s ``score``, ``baseline_score``,
    ``score_se``, ``gain_se``): what the serving rule compares. ``version`` names a stored one."""

    score: float | None
    baseline_score: float | None
    score_se: float | None = None
    gain_se: float | None = None
    version: int | None = None

    @classmethod
    def from_cv(cls, cv: dict[str, Any], version: int | None = None) -> "ScoreCard":
        return cls(cv.get("score"), cv.get("baseline_score"), cv.get("score_se"), cv.get("gain_se"), version)

    @property
    def gain(self) -> float | None:
        if self.score is None or self.baseline_score is None:
            return None
        return self.score - self.baseline_score

    def lower(self, z: float) -> float:
        """Pessimistic score: ``score - z·score_se`` (an unknown SE counts as 0)."""
        return float(self.score) - z * (self.score_se or 0.0)


@dataclass(frozen=True)
class ServingVerdict:
    """Whether a new version is served. ``reason`` is a code (served: first_served,
    active_below_baseline, beats_baseline_and_active; rejected: no_score, below_baseline,
    not_above_active); ``detail`` says it with the numbers."""

    serve: bool
    reason: str
    detail: str
    gain: float | None = None
    margin: float | None = None
    active_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"serve": self.serve, "reason": self.reason, "detail": self.detail, "gain": self.gain,
                "margin": self.margin, "active_version": self.active_version,
                "rule": f"gain over baseline > max({SERVE_MIN_GAIN}, {SERVE_Z}·SE); score - {SERVE_Z}·SE above the "
                        "active version's"}


def baseline_margin(card: ScoreCard, *, z: float = SERVE_Z, min_gain: float = SERVE_MIN_GAIN) -> float:
    """How much a version must beat its predict-the-mean baseline by: ``max(min_gain, z·gain_se)``."""
    return max(min_gain, z * (card.gain_se or 0.0))


def beats_baseline(card: ScoreCard, *, z: float = SERVE_Z, min_gain: float = SERVE_MIN_GAIN) -> bool:
    """True when the version's gain over the baseline exceeds ``baseline_margin``; False without a score."""
    return card.gain is not None and card.gain > baseline_margin(card, z=z, min_gain=min_gain)


def serving_verdict(candidate: ScoreCard, active: ScoreCard | None = None, *, z: float = SERVE_Z,
                    min_gain: float = SERVE_MIN_GAIN) -> ServingVerdict:
    """Serve ``candidate`` only if it beats the predict-the-mean baseline and the ``active`` version. Pure.

    1. Against the baseline (scored on the same out-of-fold samples): the gain ``score −
       baseline_score`` must exceed ``max(min_gain, z·gain_se)``, where ``gain_se`` is the standard
       error of the gain from the per-sample out-of-fold loss differences. z = 1 is the one-standard-
       error rule of model selection (Hastie, Tibshirani & Friedman, §7.10): a model that is not a
       standard error better than the simplest one is not shown to be better. ``min_gain`` = 0.01 R²
       keeps a model that explains under 1% of the variance out even when the SE is tiny: it would
       re-rank posts on noise. The numbers that motivated the rule: ``predictor:content:v2`` with CV
       R² −1.99 against the baseline's −0.11 (gain −1.88), and another run's −12.2 vs −1.14, were
       served; both are rejected here by any margin. Measured on the learn job's test data
       (tests/jobs/test_learn.py, 6–171 outcomes): ``gain_se`` is 0.67–0.76 R² at n = 6 (nothing
       is served), 0.13–0.26 at n = 31 and 0.02–0.31 at n = 71–171, where a hook effect of CV R² 0.67
       is served and an hour model with no signal (gain −0.03) is not.
    2. Against the active version, if there is one and it itself beats its baseline (a version stored
       before this rule may not; it defends nothing): ``score − z·score_se`` must be above the active
       version's ``score − z·score_se``. The two scores were measured on different outcomes (the
       active one on fewer), so point estimates would favour a lucky small sample; comparing the
       pessimistic ends rewards a score that is both higher and better measured. The margin over
       the active score is therefore ``z·(score_se − active score_se)``: positive when the new score
       is noisier, negative when it rests on more data. A tie keeps the active version.
    """
    if candidate.score is None or candidate.baseline_score is None:
        return ServingVerdict(False, "no_score", "no cross-validated score (too few samples, or a target that "
                                                 "does not vary)")
    gain, margin = candidate.gain, baseline_margin(candidate, z=z, min_gain=min_gain)
    if not gain > margin:
        return ServingVerdict(
            False, "below_baseline",
            f"cv {candidate.score:.4g} does not beat the predict-the-mean baseline {candidate.baseline_score:.4g} "
            f"by the margin {margin:.3g} (gain {gain:.3g}; margin = max({min_gain:g}, {z:g}·SE "
            f"{candidate.gain_se or 0.0:.3g}))", gain, margin)
    if active is None:
        return ServingVerdict(True, "first_served", f"beats the baseline by {gain:.3g} > {margin:.3g}; no active "
                                                    "version", gain, margin)
    if not beats_baseline(active, z=z, min_gain=min_gain):
        return ServingVerdict(True, "active_below_baseline",
                              f"beats the baseline by {gain:.3g} > {margin:.3g}; the active v{active.version} does "
                              "not beat its own baseline", gain, margin, active.version)
    mine, theirs = candidate.lower(z), active.lower(z)
    if not mine > theirs:
        return ServingVerdict(
            False, "not_above_active",
            f"cv {candidate.score:.4g} − {z:g}·SE = {mine:.4g} is not above the active v{active.version}'s "
            f"{active.score:.4g} − {z:g}·SE = {theirs:.4g}", gain, margin, active.version)
    return ServingVerdict(True, "beats_baseline_and_active",
                          f"beats the baseline by {gain:.3g} > {margin:.3g} and the active v{active.version} "
                          f"({mine:.4g} > {theirs:.4g} at −{z:g}·SE)", gain, margin, active.version)
