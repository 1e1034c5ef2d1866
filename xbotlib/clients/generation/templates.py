"""Offline content: a template generator that writes realistic posts without any API.

``TemplateGenerator(seed)`` writes posts for every (hook pattern x topic) of ``xbotlib.core.vocab``,
marked ``generation_source='template'``. Each post is an opener (the hook) + a body (a fact, a tip,
or a contrarian claim about the topic) + an optional closer, so one hook x topic cell has hundreds
of distinct texts. The pieces obey two rules, checked by tests for every combination:

- openers and closers contain no topic keyword, and each body contains keywords of its own topic
  only, so ``vocab.detect_topic`` reads the requested topic back;
- the opener alone decides ``vocab.detect_hook``; bodies contain no '.', '!' or '?' before their
  final period, so a question opener stays a question.

No hashtags and no closing question: those are experiment arms, applied elsewhere. The ``question``
hook opens with a question and always continues with a statement.

``Candidate`` and the ``ContentGenerator`` protocol live in ``xbotlib.clients.generation.candidates``.
"""
from __future__ import annotations

import numpy as np

from xbotlib.clients.generation.candidates import MAX_POST_CHARS, Candidate
from xbotlib.core.vocab import HOOK_PATTERNS, TOPICS

ANGLES: tuple[str, ...] = ("contrarian",)


# ----------------------------------------------------------------------------- topic bodies
# Facts are statements; tips are imperatives (for call-to-action hooks); claims are contrarian.
# Every sentence ends with one period and has no other '.', '!' or '?'.

FACTS: dict[str, tuple[str, ...]] = {
    "ai": (
        "Most AI gains at work come from boring tasks like drafting and summarising, not from flashy demos.",
        "A small model tuned on your own data often beats a giant general model on a narrow task.",
        "LLM answers get noticeably better when the prompt includes two or three worked examples.",
        "Neural networks were proposed in the 1940s; cheap GPUs and big datasets are what made them work.",
        "Most machine learning projects fail on data quality long before the model becomes the problem.",
        "AI agents still break on long tasks because small errors compound at every step.",
        "Asking an LLM to list its assumptions before answering removes a surprising share of its mistakes.",
        "The cheapest way to improve an AI feature is usually a better evaluation set, not a bigger model.",
        "GPT-style models only predict the next token; everything else they do emerges from doing that at scale.",
        "An LLM that can look things up hallucinates far less than one that answers from memory.",
        "Prompt clarity matters more than prompt length; a short, specific instruction wins most of the time.",
    ),
    "productivity": (
        "Ninety minutes of deep work before checking messages beats a full day of scattered focus.",
        "People who time block their calendar finish more planned work than people who run on to-do lists alone.",
        "Procrastination is mostly about emotions: we avoid how a task makes us feel, not the task itself.",
        "A new habit sticks faster when you attach it to a routine you already have, like the first coffee.",
        "Every switch between tasks costs minutes of focus, which quietly eats your productivity.",
        "A weekly review of your calendar catches most of the work that silently slips through the cracks.",
        "Writing tomorrow's top three tasks tonight makes it far easier to protect your focus in the morning.",
        "Batching email into two fixed slots a day frees hours for deep work without anyone noticing.",
        "Most procrastinators are not lazy; they lack a clear first step, so make that step tiny and routine.",
        "Meetings without an agenda expand to fill the calendar; a one-line goal cuts most of them in half.",
        "The two-minute rule works: doing tiny tasks at once beats tracking them, and the habit compounds.",
    ),
    "science": (
        "Every atom of carbon in your body was forged inside a star, which makes biology a late chapter of physics.",
        "Light from the most distant galaxies has travelled for over thirteen billion years, so we see the universe as it was.",
        "Ice floats because of the shape of the water molecule, and that quirk lets lakes keep life through winter.",
        "Evolution does not chase perfection; it keeps whatever works well enough to reproduce.",
        "Tardigrades can survive the vacuum of space, radiation and decades without water.",
        "The famous double-slit experiment still has physics students arguing about what a measurement is.",
        "There are more ways to shuffle a deck of cards than there are stars in the observable universe.",
        "You share roughly 60 percent of your genes with a banana, a humbling lesson from evolution.",
        "A single failed replication experiment can overturn a headline result, which is why good science repeats itself.",
        "The crew of the space station sees about sixteen sunrises a day because it circles Earth every 90 minutes.",
        "Octopuses taste with their arms, one of the strangest tricks biology has come up with.",
    ),
    "startups": (
        "Most startups die from running out of cash while waiting for product-market fit, not from competition.",
        "The best founders talk to customers every week, long after they think they know the answers.",
        "A SaaS product with strong retention and slow growth is worth more than one with fast growth and churn.",
        "Investors fund momentum; three months of steady revenue growth beats any pitch deck.",
        "Charging from day one tells a founder more about demand than any survey of potential customers.",
        "Fundraising takes twice as long as founders expect, so start while you still have a year of runway.",
        "Early customers who complain loudly are gifts: they care enough to tell you what to fix.",
        "A startup's first ten customers rarely come from ads; they come from the founder doing things that do not scale.",
        "Net revenue retention above 100 percent means a SaaS company grows even with zero new sales.",
        "Most investor passes are about timing and market size, not the founder, so keep them warm with short updates.",
        "Finding product-market fit feels like being pulled by customers instead of pushing the product.",
    ),
    "health": (
        "A ten-minute walk after meals blunts blood sugar spikes, which makes walking the easiest health upgrade there is.",
        "Adults who sleep under six hours a night get sick more often, even when they exercise regularly.",
        "Strength training twice a week protects muscle and bone as you age, and it helps your heart too.",
        "Spreading protein across three meals builds more muscle than eating most of it at dinner.",
        "Chronic stress raises resting heart rate, and a few slow breaths are a measurable way to bring it down.",
        "Consistent wake-up times improve sleep quality more than an earlier bedtime does.",
        "Good nutrition is mostly boring: vegetables, fibre, enough protein and fewer ultra-processed snacks.",
        "Regular walking cuts the risk of heart disease, and the benefit starts well below ten thousand steps.",
        "Morning daylight sets your body clock and makes it easier to sleep at night.",
        "Exercise is one of the best treatments for stress, often working as well as the usual first-line advice.",
        "Most healthy adults get enough water from food and normal drinking, without counting glasses.",
    ),
}

TIPS: dict[str, tuple[str, ...]] = {
    "ai": (
        "Ask your LLM to critique its own first draft before you accept it.",
        "Keep a file of every prompt that worked and reuse it instead of starting from scratch.",
        "Give the model one good example of the output you want before asking for ten more.",
        "Test any AI tool on five tasks from your real week before paying for it.",
        "Tell the model who the audience is; the same prompt gets sharper with one line of context.",
        "Before you build AI agents, write the task down as a checklist a person could follow.",
        "Have the LLM answer in a fixed format so you can compare its outputs side by side.",
        "Read the AI output aloud once before you send it; the weak sentences jump out.",
    ),
    "productivity": (
        "Block the first ninety minutes of your calendar for deep work and guard it like a meeting.",
        "Pick tomorrow's top three tasks tonight and put them on your calendar.",
        "Turn off notifications for one afternoon and notice how much focus comes back.",
        "Stack a new habit onto an existing routine, like reading two pages after coffee.",
        "When you catch yourself procrastinating, shrink the task until the first step takes two minutes.",
        "Time block email into two slots a day and close the inbox in between.",
        "Do a fifteen-minute review of your calendar every Friday afternoon.",
        "Keep one notebook for every open loop so your focus stays on the task in front of you.",
    ),
    "science": (
        "Download a free sky map and find one planet tonight; space is closer than it looks.",
        "Repeat a classic kitchen experiment with your kids: baking soda, vinegar and a balloon.",
        "Read one chapter of a popular physics book a week; a year of that beats any crash course.",
        "Watch a time-lapse of evolution in bacteria; it makes the idea click in minutes.",
        "Before sharing a science headline, find the original paper and check the sample size.",
        "Drop food colouring into hot and cold water side by side and watch each molecule race.",
        "Visit a natural history museum and follow one lineage through evolution from start to end.",
        "Look at pond water under a cheap microscope; biology gets real fast.",
    ),
    "startups": (
        "Email five customers this week and ask what almost stopped them from buying.",
        "Write your startup pitch in one line and test it on someone outside tech.",
        "Track revenue weekly, not monthly; problems show up a month earlier.",
        "Before fundraising, list the ten investors who back your exact stage and sector.",
        "Send investors a short monthly update even when you are not raising.",
        "Ask your best customers what they would use if your product vanished tomorrow.",
        "Price your SaaS higher than feels comfortable and watch who still signs up.",
        "Write down the one metric that proves product-market fit for you, then check it every Monday.",
    ),
    "health": (
        "Go walking for ten minutes after your biggest meal, every day for a week.",
        "Set one fixed wake-up time for seven days and notice how your sleep changes.",
        "Add a palm-sized portion of protein to breakfast.",
        "Swap one scroll break for two minutes of slow breathing when stress builds.",
        "Do two short strength exercise sessions a week; twenty minutes is enough to start.",
        "Keep your phone out of the bedroom to protect your sleep.",
        "Replace one ultra-processed snack a day with fruit; small nutrition wins add up.",
        "Take the stairs and short walking breaks; your heart counts every one.",
    ),
}

CLAIMS: dict[str, tuple[str, ...]] = {
    "ai": (
        "Bigger AI models are not the bottleneck for most teams; unclear tasks and missing data are.",
        "Prompt engineering as a job title will fade; knowing your domain will matter more than clever prompts.",
        "Most demos of AI agents would be faster as a plain script with one LLM call.",
        "Fine-tuning is overrated; a good prompt plus retrieval solves most LLM problems.",
        "AI will not replace your job this year, but people who use it well will outpace you.",
        "Benchmark scores say little about how a model behaves on your messy real data.",
    ),
    "productivity": (
        "More productivity apps usually means less focus; the tool becomes the work.",
        "Waking up at 5am is not a productivity secret; a consistent routine at any hour works just as well.",
        "Procrastination is sometimes useful: a delay can reveal which tasks never mattered.",
        "Strict time block schedules break by Tuesday; leave a third of your calendar empty.",
        "Inbox zero is a distraction from deep work, not a sign of it.",
        "Motivation follows action; waiting for it is the most common form of procrastination.",
    ),
    "science": (
        "The scientific method is not a straight line; most real science is messy backtracking.",
        "A single surprising experiment proves very little until someone else repeats it.",
        "Evolution is not a ladder toward humans; bacteria are just as evolved as we are.",
        "Space exploration pays for itself on Earth through the technology it forces us to build.",
        "Most of the universe is made of things we cannot see and have barely named.",
        "School physics is taught backwards: start with questions about the world, then the maths.",
    ),
    "startups": (
        "Raising a big round early kills more startups than it saves.",
        "Founders should ignore most competitors and obsess over their customers instead.",
        "Revenue cures more problems than any investor ever will.",
        "A SaaS startup with ten happy customers is in better shape than one with ten thousand free users.",
        "Fundraising success is not startup success; it is a loan against future expectations.",
        "Product-market fit is not a moment; you can lose it as quickly as you found it.",
    ),
    "health": (
        "Ten thousand steps is a marketing number; the benefits of walking start much earlier.",
        "Sleep is a better performance enhancer than any supplement on the shelf.",
        "Stretching before exercise does far less for injury prevention than a proper warm-up.",
        "Breakfast is not the most important meal; total nutrition across the day matters more.",
        "A little stress is good for you; the problem is stress that never switches off.",
        "High-protein everything is overkill for most people who already eat a normal diet.",
    ),
}

# ----------------------------------------------------------------------------- hooks
# {S} = the body as a sentence, {c} = the body as a clause (lower-case start, no final period).
OPENERS: dict[str, tuple[str, ...]] = {
    "did_you_know": ("Did you know? {S}", "Did you know that {c}? {S2}", "Fun fact: {S}", "TIL {c}.",
                     "Today I learned that {c}.", "Fun fact most people miss: {S}"),
    "new_study": ("New study: {S}", "New research points the same way: {S}", "Researchers keep finding that {c}.",
                  "A new study adds to the evidence: {S}", "Study: {S}", "New data backs this up: {S}"),
    "question": ("Why does nobody mention that {c}? {S2}", "What if I told you that {c}? {S2}",
                 "Would you have guessed that {c}? {S2}", "How many people know that {c}? {S2}",
                 "Is it just me, or is it wild that {c}? {S2}", "Why do we keep forgetting that {c}? {S2}"),
    "contrarian": ("Unpopular opinion: {S}", "Hot take: {S}", "Contrary to popular belief, {c}.",
                   "Most people are wrong about this: {S}", "Everyone says otherwise, but {c}.",
                   "Stop believing the opposite: {S}", "Actually, {c}."),
    "cta": ("Try this: {S}", "Do this today: {S}", "Save this for later: {S}", "Bookmark this: {S}",
            "Here's how to start: {S}", "Share this with someone who needs it: {S}", "Follow for more like this: {S}"),
    "plain": ("{S}", "One thing I keep noticing: {c}.", "Quick note: {S}", "Small detail, big effect: {c}.",
              "Worth knowing: {S}", "Noted for later: {S}"),
}
# Call-to-action openers that fit a statement (a contrarian claim is not an instruction to try).
CTA_STATEMENT_OPENERS: tuple[str, ...] = ("Save this for later: {S}", "Bookmark this: {S}",
                                          "Share this with someone who needs it: {S}", "Follow for more like this: {S}")
# What follows a question opener: a statement, never a question (closing questions are an experiment arm).
QUESTION_FOLLOWUPS: tuple[str, ...] = ("It changes how you plan.", "It sounds small, but it adds up.",
                                       "Most people learn it too late.", "The evidence is pretty clear.",
                                       "Once you see it, you cannot unsee it.", "Worth remembering.")
CLOSERS: tuple[str, ...] = ("", "", "Worth remembering.", "Small change, real results.", "Simple, not easy.",
                            "Underrated.", "Compounding does the rest.", "Worth a second look.",
                            "The boring answer is usually the right one.", "Give it a week and see.")
REPLY_CLOSERS: tuple[str, ...] = ("That's why this post lands.", "Your point holds up here too.",
                                  "Agree, and it goes further than this post says.", "Exactly what this thread gets at.",
                                  "Adding this to the conversation.", "Good thread; this fits right in.")


def _clause(sentence: str) -> str:
    """'Most AI gains….' -> 'most AI gains…' (keeps acronyms such as 'AI' or 'LLM' upper-case)."""
    body = sentence.rstrip(".")
    first = body.split(" ", 1)[0]
    if first[:2].isupper() or first == "I":
        return body
    return body[0].lower() + body[1:]


def _openers(hook: str, angle: str | None) -> tuple[str, ...]:
    return CTA_STATEMENT_OPENERS if (hook == "cta" and angle == "contrarian") else OPENERS[hook]


def _bodies(hook: str, topic: str, angle: str | None) -> tuple[str, ...]:
    if angle == "contrarian":
        return CLAIMS[topic]
    return TIPS[topic] if hook == "cta" else FACTS[topic]


def compose(opener: str, body: str, closer: str, followup: str = "") -> str:
    """Fill one opener with one body and append the closer; pure, so tests can check every piece."""
    text = opener.format(S=body, c=_clause(body), S2=followup or "Worth remembering.")
    return f"{text} {closer}".strip() if closer else text


class TemplateGenerator:
    """Offline posts for every hook pattern x topic, deterministic for a seed.

    Parameters
    ----------
    seed : int
        Seeds the generator used when ``candidates`` gets no ``rng``.
    """

    generation_source = "template"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def candidates(self, hook: str, topic: str, n: int, *, angle: str | None = None,
                   reply_to_text: str | None = None, rng: np.random.Generator | None = None) -> list[Candidate]:
        """Up to ``n`` distinct posts in ``hook`` about ``topic`` (fewer only if the cell runs out).

        Within one call every post has a different body, so a batch holds no near-duplicates.
        ``angle='contrarian'`` writes contrarian claims; ``reply_to_text`` writes replies to that post.
        """
        _check(hook, topic, n, angle)
        rng = rng if rng is not None else self._rng
        bodies = _bodies(hook, topic, angle)
        openers = _openers(hook, angle)
        closers = REPLY_CLOSERS if reply_to_text else CLOSERS
        order = rng.permutation(len(bodies))
        out: list[Candidate] = []
        seen: set[str] = set()
        for i in range(n):
            body = bodies[order[i % len(bodies)]]
            # several tries so a repeated body (n > len(bodies)) still gives a new text
            for _ in range(20):
                opener = openers[rng.integers(len(openers))]
                closer = closers[rng.integers(len(closers))]
                if hook == "question" and not reply_to_text:
                    closer = ""  # the follow-up statement already closes a question post
                followup = QUESTION_FOLLOWUPS[rng.integers(len(QUESTION_FOLLOWUPS))]
                text = compose(opener, body, closer, followup)
                if len(text) > MAX_POST_CHARS:
                    text = compose(opener, body, "", followup)
                if text not in seen and len(text) <= MAX_POST_CHARS:
                    break
            else:
                continue
            seen.add(text)
            out.append(Candidate(text=text, generation_source=self.generation_source, hook_pattern=hook, topic=topic))
        return out


def _check(hook: str, topic: str, n: int, angle: str | None) -> None:
    if hook not in HOOK_PATTERNS:
        raise ValueError(f"unknown hook pattern: {hook!r} (expected one of {', '.join(HOOK_PATTERNS)})")
    if topic not in TOPICS:
        raise ValueError(f"unknown topic: {topic!r} (expected one of {', '.join(TOPICS)})")
    if angle is not None and angle not in ANGLES:
        raise ValueError(f"unknown angle: {angle!r} (expected None or one of {', '.join(ANGLES)})")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
