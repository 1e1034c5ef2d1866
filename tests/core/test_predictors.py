"""Predictors: beat the mean baseline on data with signal, fall back from LightGBM, serialise safely."""
from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from xbotlib.core.predictors import (LightGBMFollows, LightGBMReward, LogisticFollows, ModelLoadError, RidgeReward, cross_validated_score, dumps, loads, train_with_fallback)


def linear_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = 0.8 * X[:, 0] - 0.5 * X[:, 1] + 0.2 * rng.normal(size=n)
    w = rng.uniform(0.2, 1.0, size=n)  # exposure weights
    return X, y, w


def nonlinear_data(n=300, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 4))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0) + 0.1 * rng.normal(size=n)  # an interaction ridge cannot see
    return X, y, np.ones(n)


def follows_data(n=300, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    follows = rng.poisson(np.exp(-0.7 + 1.2 * X[:, 0]))
    return X, follows.astype(float), np.ones(n)


@pytest.mark.parametrize("factory, data", [
    (RidgeReward, linear_data),
    (lambda: LightGBMReward(n_estimators=100), linear_data),
    (lambda: LightGBMReward(n_estimators=100), nonlinear_data),
], ids=["ridge-linear", "lightgbm-linear", "lightgbm-nonlinear"])
def test_reward_predictors_beat_the_mean_baseline(factory, data):
    X, y, w = data()
    cv = cross_validated_score(factory, X, y, w, folds=5, seed=0)
    assert cv["n"] == len(y) and cv["folds"] == 5 and cv["metric"] == "r2"
    assert cv["baseline_score"] <= 0.0 + 1e-9  # predicting the training mean explains nothing out of sample
    assert cv["score"] > 0.5 > cv["baseline_score"]
    assert cv["mse"] < cv["baseline_mse"]


def test_logistic_follows_beats_the_base_rate():
    X, f, w = follows_data()
    cv = cross_validated_score(LogisticFollows, X, f, w, kind="follows")
    assert cv["metric"] == "neg_log_loss" and cv["score"] > cv["baseline_score"]
    assert cv["auc"] > 0.75
    p = LogisticFollows().fit(X, f).predict(X)
    assert ((0 < p) & (p < 1)).all()
    constant = LogisticFollows().fit(X[:10], np.zeros(10))  # nobody followed: predict the smoothed base rate
    assert constant.predict(X[:3]) == pytest.approx([0.5 / 11] * 3)


def test_fit_follows_sklearn_conventions():
    X, y, w = linear_data(60)
    model = RidgeReward(alpha=2.0)
    assert vars(model) == {"alpha": 2.0}  # __init__ only stores parameters
    assert model.fit(X, y, sample_weight=w) is model and model.n_features_in_ == 6
    a = LightGBMReward().fit(X, y).predict(X)
    b = LightGBMReward().fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)  # deterministic


def test_train_with_fallback_prefers_lightgbm_when_it_wins():
    X, y, w = nonlinear_data()
    trained = train_with_fallback("reward", X, y, w, use_lightgbm=True, logger=logging.getLogger("t"))
    assert trained.algorithm == "lightgbm" and trained.fallback_reason is None
    assert set(trained.candidates) == {"ridge", "lightgbm"}
    assert trained.cv["score"] > trained.candidates["ridge"]["score"]
    assert trained.target == "reward_composite" and trained.n_samples == len(y)


def test_lightgbm_that_loses_to_ridge_leaves_the_ridge_model_fitted_on_all_data():
    X, y, w = linear_data(80)  # a linear signal: ridge's cv loss is lower
    trained = train_with_fallback("reward", X, y, w, use_lightgbm=True, logger=logging.getLogger("t"))
    assert trained.algorithm == "ridge" and isinstance(trained.model, RidgeReward)
    assert set(trained.candidates) == {"ridge", "lightgbm"}
    assert trained.candidates["lightgbm"]["loss"] > trained.candidates["ridge"]["loss"]
    assert trained.fallback_reason.startswith("lightgbm cv loss ") and "worse than ridge" in trained.fallback_reason
    np.testing.assert_array_equal(trained.model.predict(X), RidgeReward().fit(X, y, w).predict(X))


class _FitOnly:
    """A LightGBM model seen only through ``fit``/``predict`` (no ``fit_for_scoring``): the reference the
    cross-validation shortcut must match."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y, sample_weight=None):
        self.model.fit(X, y, sample_weight=sample_weight)
        return self

    def predict(self, X):
        return self.model.predict(X)


@pytest.mark.parametrize("cls, data, params", [
    (LightGBMReward, linear_data, {}),
    (LightGBMReward, nonlinear_data, {"num_leaves": 7, "n_estimators": 60, "random_state": 3, "n_jobs": 2}),
    (LightGBMFollows, follows_data, {}),
], ids=["reward", "reward-params", "follows"])
def test_fit_for_scoring_predicts_exactly_what_fit_predicts(cls, data, params):
    X, y, w = data(120)
    quick = cls(**params).fit_for_scoring(X[:90], y[:90], sample_weight=w[:90]).predict(X[90:])
    full = cls(**params).fit(X[:90], y[:90], sample_weight=w[:90]).predict(X[90:])
    np.testing.assert_array_equal(quick, full)
    kind = "reward" if cls is LightGBMReward else "follows"
    assert (cross_validated_score(lambda: cls(**params), X, y, w, kind=kind)
            == cross_validated_score(lambda: _FitOnly(cls(**params)), X, y, w, kind=kind))


@pytest.mark.parametrize("cls, data", [(RidgeReward, linear_data), (RidgeReward, nonlinear_data),
                                       (LogisticFollows, follows_data)], ids=["ridge", "ridge-nonlinear", "logistic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_models_predict_the_pipelines_numbers_bit_for_bit(cls, data, seed):
    """The ridge and logistic models predict without scikit-learn's per-call checks (``_standardised``): the numbers
    must be the fitted pipeline's own, to the last bit, for one row and for many, scaled far from the training
    data too (a scikit-learn upgrade that computes them differently fails here)."""
    X, y, w = data(150, seed)
    model = cls().fit(X[:100], y[:100], sample_weight=w[:100])
    pipeline_out = (model.pipeline_.predict if cls is RidgeReward
                    else lambda A: model.pipeline_.predict_proba(A)[:, 1])
    for rows in (X[100:101], X[100:], 1e3 * X[100:], X[100:].tolist()):
        got = model.predict(rows)
        assert got.shape == (len(rows),) and got.dtype == np.float64
        np.testing.assert_array_equal(got, pipeline_out(np.asarray(rows, dtype=float)))
    assert pickle.loads(pickle.dumps(model)).predict(X[100:]).tolist() == model.predict(X[100:]).tolist()


@pytest.mark.parametrize("cls, data", [(RidgeReward, linear_data), (LogisticFollows, follows_data)])
def test_linear_models_reject_rows_they_cannot_score(cls, data):
    X, y, w = data(80)
    model = cls().fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match=f"with {X.shape[1]} feature columns .* got shape \\(3, 2\\)"):
        model.predict(X[:3, :2])
    with pytest.raises(ValueError, match="with .* feature columns"):
        model.predict(X[0])
    bad = X[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="must be finite to predict"):
        model.predict(bad)


def test_fit_for_scoring_rejects_what_fit_rejects():
    X, f, w = follows_data(40)
    with pytest.raises(ValueError, match="needs both outcomes"):
        LightGBMFollows().fit_for_scoring(X, np.zeros(40), w)
    with pytest.raises(ValueError, match="must be finite"):
        LightGBMReward().fit_for_scoring(np.full((5, 2), np.nan), np.ones(5))


def test_lightgbm_failure_falls_back_to_ridge_and_logs(caplog):
    X, y, w = linear_data()
    with caplog.at_level(logging.INFO, logger="xbot.learn"):
        trained = train_with_fallback("reward", X, y, w, use_lightgbm=True, logger=logging.getLogger("xbot.learn"),
                                      lightgbm_params={"objective": "no_such_objective"})
    assert trained.algorithm == "ridge" and isinstance(trained.model, RidgeReward)
    assert trained.cv["score"] > trained.cv["baseline_score"]
    assert "no_such_objective" in trained.fallback_reason
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("[LEARN_JOB] lightgbm_failed fallback=ridge error=LightGBMError")
               and "no_such_objective" in line for line in lines), lines
    np.testing.assert_allclose(trained.model.predict(X[:5]), RidgeReward().fit(X, y, w).predict(X[:5]))


def test_follows_model_falls_back_to_logistic(caplog):
    X, f, w = follows_data()
    with caplog.at_level(logging.INFO, logger="xbot.learn"):
        trained = train_with_fallback("follows", X, f, w, True, logging.getLogger("xbot.learn"),
                                      lightgbm_params={"num_leaves": -3})
    assert trained.algorithm == "logistic" and trained.target == "follows"
    assert any("[LEARN_JOB] lightgbm_failed fallback=logistic" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("n, use_lightgbm, reason", [
    (30, True, "too few samples for lightgbm (30 < 50)"),
    (200, False, "lightgbm disabled"),
])
def test_linear_model_when_lightgbm_not_applicable(n, use_lightgbm, reason):
    X, y, w = linear_data(n)
    trained = train_with_fallback("reward", X, y, w, use_lightgbm, None)
    assert trained.algorithm == "ridge" and reason in trained.fallback_reason
    assert list(trained.candidates) == ["ridge"]


def test_cross_validation_with_too_few_samples_is_honest():
    X, y, w = linear_data(3)
    cv = cross_validated_score(RidgeReward, X, y, w)
    assert cv["score"] is None and cv["baseline_score"] is None and "too few samples (3 < 4)" in cv["reason"]


@pytest.mark.parametrize("args, match", [
    ((np.ones(5), np.ones(5)), r"X must be 2-D"),
    ((np.ones((5, 2)), np.ones(4)), r"y has shape \(4,\), expected \(5,\)"),
    ((np.full((5, 2), np.nan), np.ones(5)), "must be finite"),
    ((np.zeros((0, 2)), np.ones(0)), "no training samples"),
])
def test_fit_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        RidgeReward().fit(*args)


def test_train_with_fallback_rejects_unknown_kind():
    X, y, w = linear_data(20)
    with pytest.raises(ValueError, match="unknown predictor kind 'content'"):
        train_with_fallback("content", X, y, w, False, None)


def test_dumps_loads_round_trip_and_corruption():
    X, y, w = nonlinear_data(120)
    for model in (RidgeReward().fit(X, y, w), LightGBMReward(n_estimators=50).fit(X, y, w)):
        np.testing.assert_array_equal(loads(dumps(model)).predict(X), model.predict(X))
    blob = dumps(LightGBMReward(n_estimators=50).fit(X, y, w))
    with pytest.raises(ModelLoadError, match="cannot load stored model"):
        loads(blob[: len(blob) // 2])
    with pytest.raises(ModelLoadError, match="not a predictor"):
        loads(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ModelLoadError, match="no model bytes"):
        loads(None)


# ----------------------------------------------------------------------------- serving rule

from xbotlib.core.predictors import ScoreCard, serving_verdict  # noqa: E402


@pytest.mark.parametrize("candidate, active, serve, reason", [
    (ScoreCard(None, None), None, False, "no_score"),
    (ScoreCard(-1.99, -0.11, 0.5, 0.4), None, False, "below_baseline"),            # the served-but-worse v2 of #17
    (ScoreCard(0.10, 0.0, 0.05, 0.10), None, False, "below_baseline"),             # gain 0.10 = 1 SE: not more
    (ScoreCard(0.11, 0.0, 0.05, 0.10), None, True, "first_served"),                # gain just over 1 SE
    (ScoreCard(0.009, 0.0, 0.001, 0.001), None, False, "below_baseline"),          # under the 0.01 floor
    (ScoreCard(0.011, 0.0, 0.001, 0.001), None, True, "first_served"),
    (ScoreCard(0.30, 0.0, 0.05, 0.05), ScoreCard(-1.99, -0.11, version=2), True, "active_below_baseline"),
    (ScoreCard(0.30, 0.0, 0.05, 0.05), ScoreCard(0.30, 0.0, 0.05, 0.05, 1), False, "not_above_active"),  # a tie
    (ScoreCard(0.30, 0.0, 0.04, 0.05), ScoreCard(0.30, 0.0, 0.05, 0.05, 1), True, "beats_baseline_and_active"),
    (ScoreCard(0.40, 0.0, 0.15, 0.05), ScoreCard(0.30, 0.0, 0.04, 0.05, 1), False, "not_above_active"),  # noisier
    (ScoreCard(0.28, 0.0, 0.02, 0.05), ScoreCard(0.35, 0.0, 0.12, 0.10, 1), True, "beats_baseline_and_active"),
], ids=["no-score", "issue-17", "gain-equals-se", "gain-over-se", "under-floor", "over-floor",
        "active-loses-to-its-baseline", "tie-keeps-active", "better-measured", "higher-but-noisier",
        "lucky-small-active-replaced"])
def test_serving_rule_edges(candidate, active, serve, reason):
    verdict = serving_verdict(candidate, active)
    assert (verdict.serve, verdict.reason) == (serve, reason)
    assert verdict.detail


def test_rejection_names_the_scores_and_the_margin():
    v = serving_verdict(ScoreCard(-1.99, -0.11, 0.5, 0.4))
    assert v.detail == ("cv -1.99 does not beat the predict-the-mean baseline -0.11 by the margin 0.4 "
                        "(gain -1.88; margin = max(0.01, 1·SE 0.4))")
    assert v.as_dict()["reason"] == "below_baseline" and v.margin == pytest.approx(0.4)


def test_cross_validated_score_reports_standard_errors():
    X, y, w = linear_data()
    cv = cross_validated_score(RidgeReward, X, y, w)
    assert 0 < cv["score_se"] < 0.1 and 0 < cv["gain_se"] < 0.5
    assert serving_verdict(ScoreCard.from_cv(cv)).serve


class _RecordsThreads(RidgeReward):
    """Ridge that notes how many threads the BLAS libraries may use while it is being fitted."""

    seen: list[set[int]] = []

    def fit(self, X, y, sample_weight=None):
        _RecordsThreads.seen.append({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        return super().fit(X, y, sample_weight)


def test_cross_validation_runs_blas_on_one_thread_and_restores_it():
    X, y, w = linear_data(40)
    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    with threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine, whatever this one has
        _RecordsThreads.seen = []
        plain = cross_validated_score(RidgeReward, X, y, w)
        assert cross_validated_score(_RecordsThreads, X, y, w) == plain
        assert _RecordsThreads.seen == [{1}] * 5
        assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} == {2}
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"] == before
