"""Experiments: registry, randomised assignment, text arms, storage on the real database, lift data, CLI."""
from __future__ import annotations

import argparse
import logging
import re
import uuid
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from scipy import stats

from xbotlib.core import vocab
from xbotlib.app.cli.main import CliError
from xbotlib.core.experiments import (REGISTRY, ActiveExperiment, ArmDoesNotFit, Assignment, apply_text_arms, arms_json,
                                      assign, check_allocation, evening_hour, primary_experiment, reply_angle,
                                      strip_text_arms)
from xbotlib.store.experiments import (active_experiments, ensure_experiments, lift_frame, list_experiments,
                                       record_assignments, record_new_decision_assignments, set_experiment)
from xbotlib.views import experiment_lift
from xbotlib.app.cli import experiments as experiment_cli
from xbotlib.core.lift import lift_table
from xbotlib.store.queue import Decision, ensure_account, insert_decision, record_posted, transition

ACC = "acct1"
ALL_ON = [ActiveExperiment("hashtag_1", "post", 0.3), ActiveExperiment("question_cta", "post", 0.5),
          ActiveExperiment("contrarian_reply", "reply", 0.7), ActiveExperiment("late_evening_slot", "timing", 0.2)]
T = lambda p: Assignment("treatment", p)  # noqa: E731
C = lambda p: Assignment("control", p)  # noqa: E731


# ----------------------------------------------------------------------------- registry + assignment

def test_registry_has_the_four_experiments():
    assert {k: s.applies_to for k, s in REGISTRY.items()} == {
        "hashtag_1": "post", "question_cta": "post", "contrarian_reply": "reply", "late_evening_slot": "timing"}
    assert all(s.default_allocation == 0.5 for s in REGISTRY.values())


def test_assignment_frequencies_match_allocations():
    rng = np.random.default_rng(2026)
    n = 20_000
    draws = [assign(ALL_ON, "post", rng) for _ in range(n)]
    for exp in ALL_ON:
        if exp.applies_to == "reply":
            assert all(exp.experiment_id not in d for d in draws)
            continue
        k = sum(d[exp.experiment_id].treated for d in draws)
        # two-sided exact binomial test against the allocation: a broken sampler fails by far
        assert stats.binomtest(k, n, exp.allocation).pvalue > 0.001, (exp.experiment_id, k / n)
        assert abs(k / n - exp.allocation) < 4 * np.sqrt(exp.allocation * (1 - exp.allocation) / n)
        for d in draws[:200]:
            a = d[exp.experiment_id]
            assert a.propensity == pytest.approx(exp.allocation if a.treated else 1 - exp.allocation)
            assert a.p_treatment == pytest.approx(exp.allocation)
    # experiments are independent: chi-square test on the 2x2 table of two experiments' arms
    table = np.zeros((2, 2))
    for d in draws:
        table[int(d["hashtag_1"].treated), int(d["question_cta"].treated)] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_reply_decisions_get_only_reply_experiments():
    rng = np.random.default_rng(1)
    draws = [assign(ALL_ON, "reply", rng) for _ in range(4000)]
    assert all(set(d) == {"contrarian_reply"} for d in draws)
    k = sum(d["contrarian_reply"].treated for d in draws)
    assert stats.binomtest(k, 4000, 0.7).pvalue > 0.001
    assert assign(ALL_ON, "thread", rng) == {}  # threads are not experimented on


def test_disabled_experiments_are_not_assigned_and_seeded_draws_replay():
    exps = [ActiveExperiment("hashtag_1", "post", 0.5, enabled=False), *ALL_ON[1:]]
    a = assign(exps, "post", np.random.default_rng(9))
    assert set(a) == {"question_cta", "late_evening_slot"}
    # same seed, experiments in another order: same arms
    assert assign(list(reversed(ALL_ON)), "post", np.random.default_rng(4)) == assign(ALL_ON, "post", np.random.default_rng(4))


@pytest.mark.parametrize("make,match", [
    (lambda: ActiveExperiment("hashtag_1", "post", 0.0), r"allocation must be .* between 0.01 and 0.99, got 0.0"),
    (lambda: ActiveExperiment("hashtag_1", "post", 1), r"got 1 "),
    (lambda: ActiveExperiment("hashtag_1", "posts", 0.5), r"applies_to 'posts'"),
    (lambda: Assignment("treated", 0.5), r"arm must be 'control' or 'treatment', got 'treated'"),
    (lambda: Assignment("control", 1.2), r"propensity must be strictly between 0 and 1, got 1.2"),
    (lambda: assign(ALL_ON, "tweet", np.random.default_rng(0)), r"unknown decision type 'tweet'"),
])
def test_invalid_assignment_inputs(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_primary_experiment_is_the_first_assigned_in_registry_order_whatever_the_arm():
    assert primary_experiment({}) is None
    assert primary_experiment({"question_cta": T(0.5), "hashtag_1": C(0.5)}) == "hashtag_1"
    assert primary_experiment({"late_evening_slot": T(0.2), "question_cta": C(0.5)}) == "question_cta"
    assert primary_experiment({"contrarian_reply": C(0.3)}) == "contrarian_reply"


def test_reply_angle_and_evening_hour():
    assert reply_angle({"contrarian_reply": T(0.5)}) == "contrarian"
    assert reply_angle({"contrarian_reply": C(0.5)}) is None
    assert reply_angle({}) is None
    rng = np.random.default_rng(0)
    hours = {evening_hour(rng) for _ in range(200)}
    assert hours == set(vocab.LATE_EVENING_HOURS)


# ----------------------------------------------------------------------------- text arms

BODY = "Deep work beats multitasking: block two hours each morning for your hardest problem."


def test_hashtag_treatment_adds_one_relevant_hashtag_and_control_removes_trailing_ones():
    rng = np.random.default_rng(0)
    treated = apply_text_arms(BODY + " #focus #life", "productivity", {"hashtag_1": T(0.5)}, rng)
    assert treated == BODY + " #Productivity"
    assert vocab.hashtag_count(treated) == 1
    control = apply_text_arms(BODY + " #focus", "productivity", {"hashtag_1": C(0.5)}, rng)
    assert control == BODY and vocab.hashtag_count(control) == 0
    detected = apply_text_arms("New study: sleep and exercise protect your heart.", None, {"hashtag_1": T(0.5)}, rng)
    assert detected.endswith(" #Health")


def test_question_cta_ends_with_a_reader_question():
    rng = np.random.default_rng(0)
    out = apply_text_arms(BODY, "productivity", {"question_cta": T(0.5), "hashtag_1": T(0.5)}, rng)
    assert vocab.ends_with_question(out)
    assert any(q in out for q in vocab.READER_QUESTIONS)
    assert out.endswith("#Productivity") and out.startswith(BODY)
    assert strip_text_arms(out) == BODY
    assert apply_text_arms(BODY, "productivity", {"question_cta": C(0.5)}, rng) == BODY
    assert apply_text_arms(BODY, "productivity", {"late_evening_slot": T(0.5)}, rng) == BODY
    already = BODY + " What do you think?"
    assert apply_text_arms(already, "productivity", {"question_cta": T(0.5)}, rng) == already


def test_long_text_is_trimmed_at_a_word_boundary_without_ellipsis():
    words = ("focus habit routine calendar morning problems hardest deliberate practice " * 8).split()
    text = " ".join(words)  # ~ 600 characters, no sentence end
    out = apply_text_arms(text, "productivity", {"question_cta": T(0.5), "hashtag_1": T(0.5)}, np.random.default_rng(3))
    assert len(out) <= 280
    assert "…" not in out and "..." not in out
    body = strip_text_arms(out)
    assert body.endswith(".")
    kept = body[:-1].split()
    assert kept == words[:len(kept)]  # whole words, in order: nothing cut mid-word


def test_long_text_prefers_a_sentence_end():
    text = ("Block two hours every morning for your hardest problem. " * 3
            + "Then protect that time from meetings, chat and email like your career depends on it, "
              "because in a very real sense it actually does and everyone will eventually notice.")
    out = apply_text_arms(text, "productivity", {"question_cta": T(0.5), "hashtag_1": T(0.5)}, np.random.default_rng(3))
    assert len(out) <= 280
    assert strip_text_arms(out).endswith("hardest problem.")


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=14), min_size=1, max_size=80),
       st.booleans(), st.booleans(), st.integers(0, 2**32 - 1))
def test_text_arms_never_exceed_280_or_cut_words(words, hashtag, question, seed):
    text = "Focus: " + " ".join(words)
    arms = {"hashtag_1": T(0.5) if hashtag else C(0.5), "question_cta": T(0.5) if question else C(0.5)}
    try:
        out = apply_text_arms(text, "productivity", arms, np.random.default_rng(seed))
    except ArmDoesNotFit as exc:
        assert exc.reason in {"too_long", "empty_body"}
        return
    assert len(out) <= 280
    body = strip_text_arms(out).rstrip(".")
    assert text.startswith(body)
    assert len(body) == len(text) or text[len(body)] == " "  # ends on a word boundary


@pytest.mark.parametrize("text,topic,arms,reason", [
    ("Nothing here matches any known topic at all, sadly.", None, {"hashtag_1": T(0.5)}, "no_topic_hashtag"),
    ("x" * 400, "ai", {"question_cta": T(0.5)}, "too_long"),
    ("#AI #LLM", "ai", {"hashtag_1": C(0.5)}, "empty_body"),
])
def test_arms_that_cannot_fit_say_why(text, topic, arms, reason):
    with pytest.raises(ArmDoesNotFit) as info:
        apply_text_arms(text, topic, arms, np.random.default_rng(0))
    assert info.value.reason == reason


# ----------------------------------------------------------------------------- storage

def _decision(conn, now, decision_type="post", content=BODY, topic="productivity", status="draft", **kw):
    d = Decision(account_id=ACC, content=content, generation_source="template", decision_type=decision_type,
                 topic=topic, status=status, scheduled_at=now if status == "queued" else None,
                 target_tweet_id="999" if decision_type == "reply" else None, **kw)
    return insert_decision(conn, d, now)


def test_ensure_experiments_registers_all_disabled_and_is_idempotent(db, clock):
    with db.connection() as conn:
        assert ensure_experiments(conn, ACC, clock.now()) == 4
        assert ensure_experiments(conn, ACC, clock.now()) == 0
        rows = list_experiments(conn, ACC)
    assert [r["experiment_id"] for r in rows] == list(REGISTRY)
    assert not any(r["enabled"] for r in rows)
    assert all(r["allocation"] == 0.5 and r["n_treatment"] == 0 and r["n_control"] == 0 for r in rows)
    with db.connection() as conn:
        assert active_experiments(conn, ACC) == []
        assert list_experiments(conn, "other") == []


def test_set_experiment_enables_and_changes_allocation(db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    with db.connection() as conn:
        row = set_experiment(conn, ACC, "hashtag_1", enabled=True, allocation=0.3, now=clock.now())
        assert row["enabled"] and row["allocation"] == 0.3
        set_experiment(conn, ACC, "late_evening_slot", enabled=True, now=clock.now())
        row = set_experiment(conn, ACC, "hashtag_1", allocation=0.25, now=clock.now())
        assert row["enabled"] and row["allocation"] == 0.25  # enabled untouched
        active = active_experiments(conn, ACC)
    assert sorted(active, key=lambda e: e.experiment_id) == [
        ActiveExperiment("hashtag_1", "post", 0.25), ActiveExperiment("late_evening_slot", "timing", 0.5)]
    assert "[EXPERIMENT] updated experiment=hashtag_1 enabled=true allocation=0.25" in caplog.text


def test_set_experiment_on_an_autocommit_connection_is_all_or_nothing(db, clock):
    # its three statements go out as one pipeline: on an autocommit connection they are one implicit transaction,
    # so when the read-back fails (here: the counts table away) the change is not kept either
    with db.autocommit() as conn:
        set_experiment(conn, ACC, "question_cta", enabled=True, allocation=0.4, now=clock.now())
        conn.execute("ALTER TABLE experiment_arm_counts RENAME TO experiment_arm_counts_away")
        with pytest.raises(psycopg.errors.UndefinedTable):
            set_experiment(conn, ACC, "question_cta", allocation=0.6, now=clock.now() + timedelta(hours=1))
        conn.execute("ALTER TABLE experiment_arm_counts_away RENAME TO experiment_arm_counts")
        row = set_experiment(conn, ACC, "hashtag_1", enabled=True, now=clock.now())
        rows = {r["experiment_id"]: r for r in list_experiments(conn, ACC)}
    assert row["enabled"] and (rows["question_cta"]["allocation"], rows["question_cta"]["updated_at"]) == \
        (0.4, clock.now())


@pytest.mark.parametrize("kwargs,match", [
    ({"experiment_id": "emoji_3", "enabled": True}, r"unknown experiment 'emoji_3' \(valid ids: hashtag_1, question_cta, contrarian_reply, late_evening_slot\)"),
    ({"experiment_id": "hashtag_1", "allocation": 0.0}, r"allocation must be a number between 0.01 and 0.99, got 0.0"),
    ({"experiment_id": "hashtag_1", "allocation": 0.9999999999999999}, r"got 0.9999999999999999 .*disable"),
    ({"experiment_id": "hashtag_1", "allocation": 1.0}, r"got 1.0"),
    ({"experiment_id": "hashtag_1", "allocation": 1.5, "enabled": False}, r"got 1.5"),
    ({"experiment_id": "hashtag_1", "allocation": float("nan")}, r"got nan"),
    ({"experiment_id": "hashtag_1", "allocation": True}, r"got True"),
    ({"experiment_id": "hashtag_1", "enabled": "yes"}, r"enabled must be True or False, got 'yes'"),
    ({"experiment_id": "hashtag_1"}, r"nothing to change for 'hashtag_1'"),
])
def test_set_experiment_rejects_bad_input_and_leaves_data_intact(db, clock, kwargs, match):
    with db.connection() as conn:
        set_experiment(conn, ACC, "question_cta", enabled=True, allocation=0.4, now=clock.now())
        before = list_experiments(conn, ACC)
    with pytest.raises(ValueError, match=match):
        with db.connection() as conn:
            set_experiment(conn, ACC, now=clock.now() + timedelta(hours=1), **kwargs)
    with db.connection() as conn:
        assert list_experiments(conn, ACC) == before


def test_record_assignments_stores_propensities_and_labels_the_decision(db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    now = clock.now()
    arms = {"hashtag_1": T(0.3), "question_cta": C(0.5), "late_evening_slot": C(0.8)}
    with db.connection() as conn:
        ensure_experiments(conn, ACC, now)
        did = _decision(conn, now)
        assert record_assignments(conn, ACC, did, arms, now) == 3
        assert record_assignments(conn, ACC, did, arms, now) == 0  # same again: no-op
        stored = conn.execute("SELECT experiment_id, arm, propensity FROM experiment_assignments "
                              "WHERE decision_id = %s ORDER BY experiment_id", (did,)).fetchall()
        cm = conn.execute("SELECT experiment_id, experiment_arms FROM content_metadata WHERE decision_id = %s",
                          (did,)).fetchone()
        counts = {r["experiment_id"]: (r["n_treatment"], r["n_control"]) for r in list_experiments(conn, ACC)}
    assert [(r["experiment_id"], r["arm"], r["propensity"]) for r in stored] == [
        ("hashtag_1", "treatment", 0.3), ("late_evening_slot", "control", 0.8), ("question_cta", "control", 0.5)]
    assert cm["experiment_id"] == "hashtag_1"
    assert cm["experiment_arms"] == arms_json(arms)
    assert counts == {"hashtag_1": (1, 0), "question_cta": (0, 1), "contrarian_reply": (0, 0), "late_evening_slot": (0, 1)}
    assert f"[EXPERIMENT] assigned decision_id={did} experiment=hashtag_1 arm=treatment propensity=0.3" in caplog.text


def test_record_assignments_refuses_bad_input_and_changes_nothing(db, clock):
    now = clock.now()
    with db.connection() as conn:
        post = _decision(conn, now)
        reply = _decision(conn, now, decision_type="reply", content="Interesting point about AI agents.", topic="ai")
        record_assignments(conn, ACC, post, {"hashtag_1": T(0.5)}, now)
    cases = [
        (post, {"hashtag_1": C(0.5)}, r"already assigned to hashtag_1=treatment.*immutable"),
        (post, {"question_cta": T(0.5), "hashtag_1": T(0.4)}, r"already assigned"),
        (reply, {"question_cta": T(0.5)}, r"'question_cta' does not apply to a reply decision"),
        (post, {"nope": T(0.5)}, r"unknown experiment 'nope'"),
        (uuid.uuid4(), {"hashtag_1": T(0.5)}, r"no decision with id"),
    ]
    for did, arms, match in cases:
        with pytest.raises((ValueError, LookupError), match=match):
            with db.connection() as conn:
                record_assignments(conn, ACC, did, arms, now)
    with pytest.raises(ValueError, match=r"belongs to account 'acct1', not 'other'"):
        with db.connection() as conn:
            record_assignments(conn, "other", post, {"question_cta": T(0.5)}, now)
    with db.connection() as conn:
        rows = conn.execute("SELECT decision_id, experiment_id, arm FROM experiment_assignments").fetchall()
    assert [(r["decision_id"], r["experiment_id"], r["arm"]) for r in rows] == [(post, "hashtag_1", "treatment")]


def test_a_new_decisions_assignments_are_stored_as_record_assignments_stores_them(db, clock, caplog):
    # the plan job's path: the decision carries its arms and label; one statement stores the same rows and
    # leaves the same decision row as inserting it bare and calling record_assignments
    caplog.set_level(logging.INFO, logger="xbot")
    now = clock.now()
    arms = {"hashtag_1": T(0.3), "question_cta": C(0.5), "late_evening_slot": C(0.8)}

    def stored(conn, did):
        rows = conn.execute("SELECT experiment_id, arm, propensity, assigned_at FROM experiment_assignments "
                            "WHERE decision_id = %s ORDER BY assignment_id", (did,)).fetchall()
        cm = conn.execute("SELECT experiment_id, experiment_arms FROM content_metadata WHERE decision_id = %s",
                          (did,)).fetchone()
        return [tuple(r.values()) for r in rows], dict(cm)

    with db.connection() as conn:
        old = _decision(conn, now)
        record_assignments(conn, ACC, old, arms, now)
        labelled = Decision(account_id=ACC, content=BODY + " Again.", generation_source="template", decision_type="post",
                            topic="productivity", status="draft", experiment_id=primary_experiment(arms),
                            experiment_arms={k: {"arm": a.arm, "propensity": a.propensity} for k, a in arms.items()})
        insert_decision(conn, labelled, now)
        assert record_new_decision_assignments(conn, labelled, now) == 3
        assert stored(conn, labelled.decision_id) == stored(conn, old)
    assert f"[EXPERIMENT] assigned decision_id={labelled.decision_id} experiment=question_cta arm=control" in caplog.text


def test_a_new_decisions_assignments_are_refused_when_they_do_not_fit_and_nothing_is_written(db, clock):
    now = clock.now()
    reply_arms = {"question_cta": {"arm": "treatment", "propensity": 0.5}}
    cases = [(dict(decision_type="reply", target_tweet_id="999", experiment_id="question_cta",
                   experiment_arms=reply_arms), r"'question_cta' does not apply to a reply decision"),
             (dict(experiment_id="nope", experiment_arms={"nope": {"arm": "treatment", "propensity": 0.5}}),
              r"unknown experiment 'nope'"),
             (dict(experiment_id="question_cta", experiment_arms={"hashtag_1": {"arm": "treatment", "propensity": 0.5},
                                                                  "question_cta": {"arm": "control", "propensity": 0.5}}),
              r"labelled 'question_cta' but its arms make it 'hashtag_1'")]
    for i, (fields, match) in enumerate(cases):
        d = Decision(**{"account_id": ACC, "content": f"{BODY} Case {i}.", "generation_source": "template",
                        "decision_type": "post", "topic": "productivity", "status": "draft", **fields})
        with pytest.raises(ValueError, match=match):
            with db.connection() as conn:
                insert_decision(conn, d, now)
                record_new_decision_assignments(conn, d, now)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM experiment_assignments").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM content_metadata").fetchone()["n"] == 0


def test_seeded_assignment_of_many_decisions_is_stored_with_allocation_frequencies(db, clock):
    now = clock.now()
    rng = np.random.default_rng(77)
    with db.connection() as conn:
        set_experiment(conn, ACC, "question_cta", enabled=True, allocation=0.3, now=now)
        set_experiment(conn, ACC, "contrarian_reply", enabled=True, now=now)
        active = active_experiments(conn, ACC)
        for _ in range(400):
            arms = assign(active, "post", rng)
            record_assignments(conn, ACC, _decision(conn, now), arms, now)
        rows = conn.execute("SELECT arm, propensity, count(*) AS n FROM experiment_assignments "
                            "GROUP BY arm, propensity ORDER BY arm").fetchall()
    assert [(r["arm"], r["propensity"]) for r in rows] == [("control", 0.7), ("treatment", 0.3)]
    n_treated = next(r["n"] for r in rows if r["arm"] == "treatment")
    assert stats.binomtest(n_treated, 400, 0.3).pvalue > 0.001


# ----------------------------------------------------------------------------- lift data

def _post_with_outcome(conn, now, arms, world, reward, *, content=BODY, topic="productivity", simulated=True,
                       pass2=True, novelty=None):
    did = _decision(conn, now, status="queued", content=content, topic=topic, novelty=novelty)
    record_assignments(conn, ACC, did, arms, now)
    transition(conn, did, "posting", now, expected="queued")
    record_posted(conn, did, ACC, f"tw-{did.hex[:12]}", now, world, now)
    for p in (1, 2) if pass2 else (1,):
        conn.execute(
            """INSERT INTO outcomes (decision_id, account_id, collected_pass, simulated, impressions, follows, fpki,
                                     reward_composite, collected_at)
               VALUES (%s, %s, %s, %s, 1000, %s, %s, %s, %s)""",
            (did, ACC, p, simulated, reward, reward, reward * 0.5 + p, now + timedelta(hours=24 if p == 2 else 1)))
    return did


def test_lift_frame_joins_pass_two_outcomes_for_the_world_and_builds_covariates(db, clock):
    now = clock.now()
    rng = np.random.default_rng(5)
    hooks = ["Did you know deep work doubles output?", "New study: focus habits predict revenue.",
             "Unpopular opinion: calendars kill focus.", BODY]
    with db.connection() as conn:
        ensure_account(conn, ACC, now, timezone="Europe/Paris")
        conn.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                     "VALUES (%s, %s, 120, true), (%s, %s, 150, true)",
                     (ACC, now - timedelta(days=1), ACC, now + timedelta(days=30)))
        ids = []
        for i in range(40):
            treated = (i // 4) % 2 == 0  # every hook appears in both arms
            arms = {"question_cta": T(0.4) if treated else C(0.6)}
            text = apply_text_arms(hooks[i % 4], "productivity", arms, rng)
            follows = i % 4 + treated + rng.normal(0, 0.3)
            ids.append(_post_with_outcome(conn, now + timedelta(hours=i), arms, "sandbox", follows,
                                          content=text, novelty=0.1 * (i % 5)))
        _post_with_outcome(conn, now, {"question_cta": T(0.4)}, "sandbox", 9.0, pass2=False)  # no T+24h yet
        _post_with_outcome(conn, now, {"question_cta": T(0.4)}, "live", 9.0, simulated=False)  # other world
        _post_with_outcome(conn, now, {"hashtag_1": T(0.5)}, "sandbox", 9.0)  # other experiment
        df = lift_frame(conn, ACC, "question_cta", "sandbox")
        live = lift_frame(conn, ACC, "question_cta", "live")
    assert len(df) == 40 and set(df["decision_id"]) == {str(i) for i in ids}
    assert len(live) == 1
    assert df["treatment"].sum() == 20
    assert set(df["propensity"]) == {0.4}  # P(treatment) for both arms
    assert (df["reward_composite"] == df["follows"] * 0.5 + 2).all()  # pass 2, not pass 1
    assert (df["replies"] == 0).all()  # a guardrail of the lift report (none inserted here)
    # the reader question does not change the hook read back from the text
    assert list(df["hook"][:4]) == ["did_you_know", "new_study", "contrarian", "plain"]
    assert df["hook_did_you_know"].sum() == 10 and df["topic_productivity"].all()
    assert df["log_followers"].iloc[0] == pytest.approx(np.log1p(120))
    # Paris is UTC+1 in March: the first post at 08:00 UTC is 09:00 local
    assert df["hour_sin"].iloc[0] == pytest.approx(np.sin(2 * np.pi * 9 / 24))
    cov = df.attrs["covariates"]
    assert "novelty" not in cov and "hour_sin" in cov and "hook_new_study" in cov
    assert "topic_ai" not in cov  # constant in this frame
    table = lift_table(df, covariates=cov, seed=0)
    aipw_row = table[(table["estimator"] == "aipw_ridge") & (table["outcome"] == "fpki")].iloc[0]
    assert aipw_row["n_treatment"] == 20 and aipw_row["n_control"] == 20
    assert aipw_row["ci_low"] < 1.0 < aipw_row["ci_high"]  # simulated: treated got +1 follow


def test_lift_frame_excludes_covariates_the_treatment_moves(db, clock):
    with db.connection() as conn:
        for i in range(6):
            arms = {"late_evening_slot": T(0.5) if i % 2 else C(0.5), "hashtag_1": C(0.5)}
            _post_with_outcome(conn, clock.now() + timedelta(hours=i), arms, "sandbox", float(i),
                               novelty=0.1 * i, content=["Did you know focus compounds?", BODY][i % 2])
        df = lift_frame(conn, ACC, "late_evening_slot", "sandbox")
        with pytest.raises(ValueError, match=r"unknown world 'prod' \(expected 'live' or 'sandbox'"):
            lift_frame(conn, ACC, "late_evening_slot", "prod")
        with pytest.raises(ValueError, match=r"unknown experiment 'evening'"):
            lift_frame(conn, ACC, "evening", "sandbox")
        empty = lift_frame(conn, ACC, "contrarian_reply", "sandbox")
    assert {"hour_sin", "hour_cos"}.isdisjoint(df.attrs["covariates"])
    assert {"novelty", "hook_did_you_know"} <= set(df.attrs["covariates"])
    assert len(empty) == 0 and empty.attrs["covariates"] == []


# ----------------------------------------------------------------------------- CLI

def _run(argv):
    parser = argparse.ArgumentParser(prog="xbot")
    experiment_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def cli_env(monkeypatch, db_url, tmp_path):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("XBOT_HOME", str(tmp_path / ".xbot"))
    monkeypatch.setenv("XBOT_ACCOUNT_ID", ACC)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_cli_list_and_set(cli_env, db, capsys):
    assert _run(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(k in out for k in REGISTRY) and "acct1" in out
    assert _run(["experiment", "set", "hashtag_1", "--enable", "--allocation", "0.3"]) == 0
    assert re.search(r"hashtag_1\s+post\s+yes\s+0\.30", capsys.readouterr().out)
    assert _run(["experiment", "set", "hashtag_1", "--disable"]) == 0
    with db.connection() as conn:
        row = next(r for r in list_experiments(conn, ACC) if r["experiment_id"] == "hashtag_1")
    assert row["enabled"] is False and row["allocation"] == 0.3


@pytest.mark.parametrize("argv,match", [
    (["experiment", "set", "emoji_3", "--enable"], r"unknown experiment 'emoji_3' \(valid ids: hashtag_1"),
    (["experiment", "set", "hashtag_1", "--allocation", "1"], r"allocation must be .* got 1.0"),
    (["experiment", "set", "hashtag_1"], r"nothing to change .* --enable, --disable and/or --allocation"),
])
def test_cli_errors_are_user_errors_and_change_nothing(cli_env, db, argv, match):
    _run(["experiment", "list"])
    with db.connection() as conn:
        before = list_experiments(conn, ACC)
    with pytest.raises(CliError, match=match):
        _run(argv)
    with db.connection() as conn:
        assert list_experiments(conn, ACC) == before


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        _run(["experiment", "set", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--allocation P" in out and "late_evening_slot" in out
    with pytest.raises(SystemExit):
        _run(["experiment", "set", "hashtag_1", "--enable", "--disable"])  # mutually exclusive


def test_experiment_lift_reports_estimates_or_why_not(db, clock):
    rng = np.random.default_rng(3)
    with db.connection() as conn:
        for i in range(12):
            arms = {"hashtag_1": T(0.5) if i % 2 else C(0.5)}
            _post_with_outcome(conn, clock.now() + timedelta(hours=i), arms, "sandbox", float(i % 2) + rng.normal(0, 0.1),
                               content=["Did you know focus compounds?", BODY, "New study: focus wins."][i % 3])
        ok = experiment_lift(conn, ACC, "hashtag_1", "sandbox", outcomes=("reward_composite",))
        full = experiment_lift(conn, ACC, "hashtag_1", "sandbox")
        empty = experiment_lift(conn, ACC, "question_cta", "sandbox")
    assert ok.estimable and bool(ok.frame["simulated"].all())
    assert (int(ok.frame["treatment"].sum()), int((ok.frame["treatment"] == 0).sum())) == (6, 6)
    assert list(ok.table["estimator"]) == ["difference_in_means", "ipw_hajek", "aipw_ridge"]
    assert not empty.estimable and empty.table.empty and empty.decision is None
    assert "at least 2 units in each arm" in empty.reason
    # the decision: fpki leads, the guardrails follow; replies are all 0 here, so no relative lift for them
    d = full.decision
    assert full.seed == 0 and list(dict.fromkeys(full.table["outcome"])) == ["fpki", "impressions",
                                                                             "reward_composite", "replies"]
    assert d.primary.metric == "fpki" and [g.metric for g in d.guardrails] == ["impressions", "reward_composite",
                                                                                "replies"]
    assert d.primary.relative > 0 and d.line.startswith(d.verdict)
    assert d.guardrails[2].relative is None and d.guardrails[2].absolute == 0
    assert not d.srm.flagged  # 6 / 6 at 0.5
    shown = full.metrics_table()
    assert list(shown["metric"]) == ["follows per 1,000 impressions", "impressions per post", "composite reward",
                                     "replies per post"]
    assert shown.loc[0, "lift"].endswith("%") and shown.loc[3, "lift"] == "+0"


@pytest.mark.parametrize("allocation", [0.0, 1e-300, 0.009, 0.0099999, 0.991, 0.995, 0.9999999999999999, 1.0, -0.5])
def test_allocations_too_close_to_0_or_1_are_refused_naming_the_value_and_the_bounds(allocation):
    with pytest.raises(ValueError, match=rf"between 0.01 and 0.99, got {allocation!r} "):
        check_allocation(allocation)


@pytest.mark.parametrize("allocation", [0.01, 0.2, 0.5, 0.99, np.float64(0.3), 1 / 3])
def test_allocations_within_the_bounds_are_accepted(allocation):
    assert check_allocation(allocation) == float(allocation)
    # the largest inverse-propensity weight such an allocation gives stays at most 100
    assert max(1 / allocation, 1 / (1 - allocation)) <= 100 + 1e-9
