"""Randomised experiments: the registry, per-decision assignment and arm application (pure; storage is
``xbotlib.store.experiments``).

Flow for one decision (the plan job is the caller)::

    active = active_experiments(conn, account_id)              # enabled rows of the registry
    arms = assign(active, "post", rng)                          # {experiment_id: Assignment}
    text = apply_text_arms(text, topic, arms, rng, vocabulary)  # hashtag / reader question
    hour = evening_hour(rng) if is_treated(arms, "late_evening_slot") else planned_hour
    angle = reply_angle(arms)                                   # replies: 'contrarian' or None
    Decision(..., experiment_id=primary_experiment(arms), experiment_arms=arms_json(arms))
    record_assignments(conn, account_id, decision_id, arms, now)  # experiment_assignments + log

Each experiment is an independent Bernoulli(allocation) draw, so the arms of different experiments
are independent and each experiment's lift is estimated on all decisions it was assigned to
(``lift_frame`` + ``xbotlib.core.lift``). The propensity is stored with every assignment, so changing an
allocation mid-experiment keeps the IPW/AIPW estimates valid.

Experiments are **disabled by default**: ``ensure_experiments`` registers them for an account but
nothing is randomised until an operator (``xbot experiment set ID --enable``) or the demo (which
enables all four) turns them on — a live account should not start changing its posts by itself.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from xbotlib.core import vocab

log = logging.getLogger("xbot.experiments")

APPLIES_TO = ("post", "reply", "timing")
ARMS = ("control", "treatment")
# Which decision types an experiment of each kind is assigned to. Threads get no experiment: their
# text arms would have to pick a tweet of the thread, which would make the contrast ambiguous.
DECISION_TYPES: dict[str, tuple[str, ...]] = {"post": ("post",), "timing": ("post",), "reply": ("reply",)}
MAX_TWEET_CHARS = 280
MIN_BODY_CHARS = 40  # below this a trimmed body has lost its point: refuse instead


MIN_ALLOCATION = 0.01
MAX_ALLOCATION = 1 - MIN_ALLOCATION


def check_allocation(allocation: Any) -> float:
    """The allocation as a float in [MIN_ALLOCATION, MAX_ALLOCATION] = [0.01, 0.99], or ``ValueError``
    naming the value.

    Why not anything in (0, 1): every decision's propensity (``allocation`` or ``1 - allocation``) is
    a divisor of the IPW and AIPW estimates, so one decision drawn into an arm of probability 1e-16
    weighs 1e16 times the others and the lift and its interval are noise; at 0.01 a weight is at most
    100, and the smaller arm still gets one post in a hundred. An allocation this close to 0 or 1 is
    really "switch the experiment off" (or ship the treatment), which ``enabled`` says honestly.
    """
    if isinstance(allocation, bool) or not isinstance(allocation, (int, float, np.floating)) \
            or not math.isfinite(allocation) or not MIN_ALLOCATION <= allocation <= MAX_ALLOCATION:
        raise ValueError(f"allocation must be a number between {MIN_ALLOCATION} and {MAX_ALLOCATION}, got "
                         f"{allocation!r} (e.g. 0.5 for an even split; closer to 0 or 1 gives inverse-propensity "
                         "weights over 100: disable the experiment instead)")
    return float(allocation)


@dataclass(frozen=True)
class ExperimentSpec:
    """One registered experiment. ``applies_to`` is 'post', 'reply' or 'timing' (timing applies to posts)."""
    experiment_id: str
    applies_to: str
    description: str
    default_allocation: float = 0.5

    def __post_init__(self) -> None:
        if self.applies_to not in APPLIES_TO:
            raise ValueError(f"experiment {self.experiment_id!r}: applies_to {self.applies_to!r} "
                             f"(expected one of {', '.join(APPLIES_TO)})")
        check_allocation(self.default_allocation)


REGISTRY: dict[str, ExperimentSpec] = {s.experiment_id: s for s in (
    ExperimentSpec("hashtag_1", "post", "posts: add one relevant topic hashtag (the vocabulary's topic_hashtags) at the end"),
    ExperimentSpec("question_cta", "post", "posts: end with a question to the reader (the vocabulary's reader_questions)"),
    ExperimentSpec("contrarian_reply", "reply", "replies: the generator takes the contrarian angle"),
    ExperimentSpec("late_evening_slot", "timing", "posts: move the post to a late-evening hour (vocab.LATE_EVENING_HOURS)"),
)}


@dataclass(frozen=True)
class ActiveExperiment:
    """An experiment as configured for an account: what ``assign`` needs."""
    experiment_id: str
    applies_to: str
    allocation: float
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.applies_to not in APPLIES_TO:
            raise ValueError(f"experiment {self.experiment_id!r}: applies_to {self.applies_to!r} "
                             f"(expected one of {', '.join(APPLIES_TO)})")
        check_allocation(self.allocation)


@dataclass(frozen=True)
class Assignment:
    """The arm a decision got in one experiment, and the probability it had of getting that arm."""
    arm: str
    propensity: float

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"arm must be 'control' or 'treatment', got {self.arm!r}")
        if not (isinstance(self.propensity, (int, float)) and 0 < self.propensity < 1):
            raise ValueError(f"propensity must be strictly between 0 and 1, got {self.propensity!r}")

    @property
    def treated(self) -> bool:
        return self.arm == "treatment"

    @property
    def p_treatment(self) -> float:
        """P(treatment) at assignment, whichever arm was drawn (the estimators' ``propensity``)."""
        return self.propensity if self.treated else 1.0 - self.propensity


class ArmDoesNotFit(ValueError):
    """A text arm cannot be applied (too long even after trimming, or no topic for a hashtag).

    The caller should regenerate or drop the decision rather than post it with a different arm
    than the one recorded. ``reason`` is a short machine-readable cause.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def check_experiment_id(experiment_id: str) -> ExperimentSpec:
    try:
        return REGISTRY[experiment_id]
    except KeyError:
        raise ValueError(f"unknown experiment {experiment_id!r} (valid ids: {', '.join(REGISTRY)})") from None


# ----------------------------------------------------------------------------- assignment (pure)

def applies(experiment: ActiveExperiment | ExperimentSpec, decision_type: str) -> bool:
    return decision_type in DECISION_TYPES[experiment.applies_to]


def assign(experiments: Sequence[ActiveExperiment], decision_type: str, rng: np.random.Generator) -> dict[str, Assignment]:
    """Randomise one decision into each enabled experiment that applies to ``decision_type``.

    Independent Bernoulli(allocation) per experiment, drawn in experiment-id order so a seeded
    ``rng`` replays the same arms whatever order the experiments come in. Propensity is the
    probability of the arm drawn: allocation for treatment, 1 - allocation for control.
    """
    if decision_type not in ("post", "thread", "reply"):
        raise ValueError(f"unknown decision type {decision_type!r} (expected post, thread or reply)")
    out: dict[str, Assignment] = {}
    for exp in sorted(experiments, key=lambda e: e.experiment_id):
        if not exp.enabled or not applies(exp, decision_type):
            continue
        treated = bool(rng.random() < exp.allocation)
        out[exp.experiment_id] = Assignment("treatment" if treated else "control",
                                            exp.allocation if treated else 1.0 - exp.allocation)
    return out


def primary_experiment(assignments: Mapping[str, Assignment]) -> str | None:
    """The experiment named in ``content_metadata.experiment_id``: the first assigned one in registry order.

    The rule ignores the arms on purpose: a label chosen by arm (say "the treated one") would make
    filtering on the column select on treatment. The column is only a label; lift is always
    computed from ``experiment_assignments``, where every experiment of the decision is recorded.
    """
    for experiment_id in REGISTRY:
        if experiment_id in assignments:
            return experiment_id
    return next(iter(sorted(assignments)), None)


def arms_json(assignments: Mapping[str, Assignment]) -> dict[str, dict[str, Any]]:
    """``{experiment_id: {"arm": …, "propensity": …}}`` for ``content_metadata.experiment_arms``."""
    return {k: {"arm": a.arm, "propensity": a.propensity} for k, a in sorted(assignments.items())}


def is_treated(assignments: Mapping[str, Assignment], experiment_id: str) -> bool:
    a = assignments.get(experiment_id)
    return a is not None and a.treated


def reply_angle(assignments: Mapping[str, Assignment]) -> str | None:
    """'contrarian' when the reply is in the treatment arm of contrarian_reply, else None (generator's choice)."""
    return "contrarian" if is_treated(assignments, "contrarian_reply") else None


def evening_hour(rng: np.random.Generator) -> int:
    """A late-evening local posting hour for the late_evening_slot treatment."""
    return int(vocab.LATE_EVENING_HOURS[int(rng.integers(len(vocab.LATE_EVENING_HOURS)))])


# ----------------------------------------------------------------------------- text arms (pure)

_TRAILING_HASHTAGS = re.compile(r"(?:\s*(?<!\w)#\w+)+\s*$")
_TRIM_PUNCT = " \t\n,;:-–—(/&"


def strip_trailing_hashtags(text: str) -> str:
    """The text without the run of hashtags at its end (inline hashtags are part of a sentence: kept)."""
    return _TRAILING_HASHTAGS.sub("", text).rstrip()


def strip_text_arms(text: str, vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> str:
    """The body as it was before the text arms: no trailing hashtags, no closing reader question (of the
    account's ``vocabulary``).

    Used to read pre-treatment features (the hook) back from posted text.
    """
    body = strip_trailing_hashtags(text)
    for q in vocabulary.reader_questions:
        if body.endswith(q):
            return body[: -len(q)].rstrip()
    return body


def apply_text_arms(text: str, topic: str | None, assignments: Mapping[str, Assignment],
                    rng: np.random.Generator, vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> str:
    """Apply the hashtag_1 and question_cta arms to a post's text; returns at most 280 characters.

    - hashtag_1 (either arm): a trailing run of hashtags from the generator is removed, so the
      contrast is exactly "one relevant hashtag" vs "none"; treatment then appends
      ``vocabulary.topic_hashtags[topic]`` (topic detected from the text when ``topic`` is None).
    - question_cta treatment: appends a question from ``vocabulary.reader_questions`` (unless the text
      already ends with one); control leaves the text as generated.
    - When the additions do not fit, the body is shortened at a sentence end, else at a word
      boundary with a full stop: never mid-word and never with an ellipsis.

    Raises ``ArmDoesNotFit`` (with ``reason``) when no relevant hashtag exists or the body would
    have to shrink below ``MIN_BODY_CHARS``. Lengths are Python characters; X counts URLs as 23
    and some emoji as 2, which the generator's own limit should leave room for.
    """
    hashtag, question = assignments.get("hashtag_1"), assignments.get("question_cta")
    if hashtag is None and question is None:
        return text
    body = text.strip()
    if hashtag is not None:
        body = strip_trailing_hashtags(body)
        if not body:
            raise ArmDoesNotFit("empty_body", f"the text is only hashtags: {text!r} (generate a real post)")
    additions: list[str] = []
    questions = vocabulary.reader_questions
    if question is not None and question.treated and not any(body.endswith(q) for q in questions):
        additions.append(questions[int(rng.integers(len(questions)))])
    if hashtag is not None and hashtag.treated:
        topic = topic or vocabulary.detect_topic(body)
        if topic not in vocabulary.topic_hashtags:
            raise ArmDoesNotFit("no_topic_hashtag", f"no relevant hashtag for topic {topic!r} "
                                f"(topics with a hashtag: {', '.join(vocabulary.topic_hashtags)})")
        additions.append(vocabulary.topic_hashtags[topic])
    suffix = " ".join(additions)
    budget = MAX_TWEET_CHARS - (len(suffix) + 1 if suffix else 0)
    if len(body) > budget:
        body = trim_to_fit(body, budget)
    return f"{body} {suffix}" if suffix else body


def trim_to_fit(body: str, budget: int) -> str:
    """Shorten ``body`` to at most ``budget`` characters, ending on a whole sentence or a whole word.

    Prefers the last sentence end that keeps at least 60% of the budget; otherwise cuts after the
    last whole word and closes with a full stop. Raises ``ArmDoesNotFit`` below ``MIN_BODY_CHARS``.
    """
    if len(body) <= budget:
        return body
    if budget < MIN_BODY_CHARS:
        raise ArmDoesNotFit("too_long", f"only {budget} characters are left for the body after the experiment arms "
                            f"(need at least {MIN_BODY_CHARS})")
    head = body[: budget + 1]  # one extra character shows whether a sentence end is followed by a space
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)", head)]
    if ends and ends[-1] >= 0.6 * budget:
        out = body[: ends[-1]]
    else:
        limit = budget - 1  # room for the closing full stop
        cut = body[:limit]
        if not body[limit].isspace():
            cut = re.sub(r"\S*$", "", cut)  # the last word is cut: drop it whole
        out = cut.rstrip(_TRIM_PUNCT)
        if out and out[-1] not in ".!?":
            out += "."
    if len(out) < MIN_BODY_CHARS:
        raise ArmDoesNotFit("too_long", f"the post cannot fit the experiment arms in {MAX_TWEET_CHARS} characters "
                            f"without cutting the body to {len(out)} characters (generate a shorter post)")
    return out
