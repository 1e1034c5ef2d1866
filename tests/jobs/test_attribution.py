"""Follower-snapshot attribution (analytics refused): organic follows and churn are separated from the
follows posts earn, on constructed snapshot series and on a short sandbox campaign against the
sandbox's own record."""
from __future__ import annotations

import math
import tempfile
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from xbotlib.devtools.bench import attribution_figures, bench_campaign, scenario_without_analytics
from xbotlib.jobs.collect import LivePost, accrual_tau, attribute_follows, estimate_baseline
from xbotlib.sim.scenario import ScenarioError, load_scenario, parse_scenario
from xbotlib.sim.xserver import SandboxX
from xbotlib.clock import SimClock
from xbotlib.store.db import Database

T0 = datetime(2026, 3, 2, 0, 30, tzinfo=timezone.utc)
TAU = 4.0


def _t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _k(age_h: float) -> float:
    return 0.0 if age_h <= 0 else 1 - math.exp(-age_h / TAU)


def world(hours: int, rate: float, posts: list[tuple[float, int, int]], start: int = 2000):
    """Hourly snapshots of an account whose followers change by ``rate`` per hour with no post, plus each
    post's follows accruing as 1 − e^(−age/4h); ``posts`` = (posted hour, settled visits, settled follows).
    Every post was read at 1.5h and at 24.5h (or at the end) with visits on the same curve."""
    snaps = []
    for h in range(hours + 1):
        earned = sum(f * _k(h - at) for at, _, f in posts)
        snaps.append((_t(h), start + math.floor(rate * h + earned)))
    live = []
    for i, (at, visits, _) in enumerate(posts):
        first = at + 1.5 if at + 1.5 <= hours else None
        last = min(at + 24.5, hours)
        live.append(LivePost(f"p{i}", _t(at), math.floor(visits * _k(last - at)), _t(last),
                             None if first is None else math.floor(visits * _k(1.5)),
                             None if first is None else _t(first)))
    return snaps, live


def daily_posts(days: int, follows_per_visit: float = 0.1) -> list[tuple[float, int, int]]:
    """Two posts a day at 9:00 and 17:00 with 60 and 120 visits."""
    out = []
    for d in range(days):
        for hour, visits in ((8.5, 60), (16.5, 120)):
            out.append((24 * d + hour, visits, round(visits * follows_per_visit)))
    return out


# ----------------------------------------------------------------------------- the rule on constructed series

def test_a_steady_organic_baseline_with_no_post_driven_follows_is_not_attributed():
    # 14 days of +2 followers/day from nobody's posts; posts with visits but no follows of their own
    posts = [(at, v, 0) for at, v, _ in daily_posts(14)]
    snaps, live = world(14 * 24, 2 / 24, posts)
    got = attribute_follows(snaps, live, until=snaps[-1][0])
    assert sum(got.values()) < 0.1 * 28 * 0.5           # the old rule credited every one of the 28 follows
    assert all(v >= 0 for v in got.values())


def test_a_post_driven_jump_goes_to_the_live_post_and_the_baseline_is_taken_out():
    posts = daily_posts(14)                             # 6 and 12 follows per post, 252 in all
    snaps, live = world(14 * 24 + 30, 2 / 24, posts + [(14 * 24 + 2, 300, 40)])
    baseline = estimate_baseline(snaps, live, snaps[-1][0])
    assert baseline.rate_per_hour * 24 == pytest.approx(2.0, abs=1.5)   # its se here is ~0.7/day
    assert baseline.tau_hours == pytest.approx(TAU, rel=0.15)
    got = attribute_follows(snaps, live, until=snaps[-1][0])
    assert got["p28"] == pytest.approx(40, abs=3)       # the jump, to the post that caused it
    earned = sum(f for _, _, f in posts)
    assert sum(v for k, v in got.items() if k != "p28") == pytest.approx(earned, rel=0.05)


def test_churn_is_added_back_to_what_posts_earned_and_never_makes_negative_follows():
    posts = daily_posts(14)
    snaps, live = world(14 * 24, -5 / 24, posts)        # 5 unfollows a day, more than any post earns
    got = attribute_follows(snaps, live, until=snaps[-1][0])
    earned = sum(f for _, _, f in posts[:-1])           # the last post has had 8h of its day
    assert all(v >= 0 for v in got.values())
    assert sum(got.values()) == pytest.approx(earned, rel=0.08)
    # a read while only churn happens: nothing is credited
    quiet = [(at, v, 0) for at, v, _ in posts]
    snaps, live = world(14 * 24, -5 / 24, quiet)
    assert sum(attribute_follows(snaps, live, until=snaps[-1][0]).values()) < 3     # of 70 unfollows


def test_the_split_follows_visits_and_the_accrual_curve():
    # two posts, the same visits: the one posted 20 hours earlier gets only the tail of its curve here
    snaps = [(_t(0), 1000), (_t(2), 1008)]
    old, new = LivePost("old", _t(-20), 100), LivePost("new", _t(0), 100)
    got = attribute_follows(snaps, [old, new], until=_t(2))
    assert got["new"] > 20 * got["old"] and sum(got.values()) == pytest.approx(8, rel=1e-3)
    # same time, visits 3:1 -> follows 3:1; nobody has a visit -> equally
    got = attribute_follows(snaps, [LivePost("a", _t(0), 30), LivePost("b", _t(0), 10)], until=_t(2))
    assert got == pytest.approx({"a": 6.0, "b": 2.0}, rel=1e-3)
    got = attribute_follows(snaps, [LivePost("a", _t(0), 0), LivePost("b", _t(0), 0)], until=_t(2))
    assert got == pytest.approx({"a": 4.0, "b": 4.0}, rel=1e-3)


@pytest.mark.parametrize("snapshots, posts, until, expected", [
    # a post older than the 24h horizon earns nothing in a later interval
    ([(_t(30), 1000), (_t(31), 1006)], [LivePost("old", _t(0), 50), LivePost("new", _t(30), 1)], _t(31),
     {"old": 0.0, "new": 6.0}),
    # intervals after the read time do not count
    ([(_t(0), 1000), (_t(1), 1003), (_t(2), 1010)], [LivePost("a", _t(0), 1)], _t(1), {"a": 3.0}),
    # one snapshot only: no interval, nothing attributed (never invented)
    ([(_t(1), 1000)], [LivePost("a", _t(0), 9)], _t(1), {"a": 0.0}),
    # a net loss with no history: never negative follows
    ([(_t(0), 1000), (_t(1), 995)], [LivePost("a", _t(0), 5)], _t(1), {"a": 0.0}),
])
def test_attribution_edges(snapshots, posts, until, expected):
    assert attribute_follows(snapshots, posts, until) == pytest.approx(expected, abs=1e-3)


def test_accrual_tau_is_read_from_early_and_late_visits_and_falls_back_to_the_prior():
    posts = [LivePost(str(i), _t(0), 500, _t(24), math.floor(500 * (1 - math.exp(-1.5 / 6))), _t(1.5))
             for i in range(5)]
    assert accrual_tau(posts) == pytest.approx(6.0, rel=0.05)
    assert accrual_tau(posts[:0]) == 4.0 and accrual_tau([LivePost("a", _t(0), 3, _t(24), 1, _t(1))]) == 4.0


# ----------------------------------------------------------------------------- the scenario key and the sandbox

def test_the_scenario_key_makes_the_sandbox_refuse_analytics_as_x_does():
    scenario = parse_scenario({"name": "refused", "x": {"analytics": False}})
    clock = SimClock(T0)
    sandbox = SandboxX(scenario, clock=clock)
    client = sandbox.transport()
    with httpx.Client(transport=client, base_url=SandboxX.BASE_URL) as http:
        r = http.get("/2/tweets/analytics", headers={"Authorization": "Bearer t"},
                     params={"ids": "1", "start_time": "2026-03-01T00:00:00Z", "end_time": "2026-03-02T00:00:00Z",
                             "granularity": "total"})
    assert r.status_code == 403
    body = r.json()
    assert body["title"] and body["detail"] and body["type"].endswith("client-forbidden")
    assert load_scenario(None).x.analytics is True
    with pytest.raises(ScenarioError, match=r"\[x\] analytics = 'off': expected true or false"):
        parse_scenario({"name": "bad", "x": {"analytics": "off"}})


def test_a_short_campaign_with_analytics_refused_attributes_about_what_posts_earned(db_url):
    with tempfile.TemporaryDirectory() as tmp, Database.from_url(db_url, pool_max=3) as db:
        scenario = scenario_without_analytics("default", tmp)
        assert load_scenario(scenario).x.analytics is False
        run = bench_campaign(db, "xbot", 3, 12, scenario)
        with db.connection() as conn:
            figures = attribution_figures(run, conn)
            sources = conn.execute("SELECT DISTINCT follows_source FROM outcomes").fetchall()
    assert [r["follows_source"] for r in sources] == ["snapshot_attribution"]
    assert figures["true"] > 20
    assert 0.7 <= figures["attributed"] / figures["true"] <= 1.3   # loose: 12 days of one seed


# ----------------------------------------------------------------------------- one tick, vectorised across batches

def _tick_world(seed: int):
    """A month of snapshots (hourly, with gaps, a duplicate time and a purge) and posts with and without
    reads, as a catch-up tick finds them; ``now`` is the read time."""
    import numpy as np
    from xbotlib.jobs import collect
    rng = np.random.default_rng(seed)
    now = _t(24 * 30)
    hours = [h for h in range(0, 24 * 30 + 1) if rng.random() > 0.1]
    followers, snaps = 2000, []
    for h in hours:
        followers += int(rng.integers(-2, 9)) - (60 if h == 400 else 0)
        snaps.append((_t(h), followers))
    snaps.append((_t(hours[5]), followers + 1))          # two snapshots at one time
    snaps.append((now + timedelta(hours=1), followers))   # one after the read: covering keeps it, intervals do not
    snaps.sort()
    posts = []
    for i, at in enumerate(sorted(rng.uniform(-20, 24 * 29, int(rng.integers(40, 160))))):
        visits = int(rng.integers(0, 80))
        kind = rng.integers(0, 3)                          # never read / read once / read twice
        read = None if kind == 0 else _t(at) + timedelta(hours=float(rng.uniform(1, 40)))
        first = _t(at) + timedelta(hours=1) if kind == 2 else None
        posts.append(LivePost(f"p{i:03d}", _t(at), visits if read else 0, read,
                              int(visits * 0.4) if first else None, first))
    posts = [p for p in posts if p.read_at is None or p.read_at <= now]
    return collect, rng, snaps, posts, now


@pytest.mark.parametrize("seed", range(6))
def test_tick_attribution_returns_what_attribute_follows_returns_per_batch(seed):
    """Every batch of a tick gets from TickAttribution what ``attribute_follows`` gives on the inputs that
    batch would read (its snapshot window, the posts live in it with the earlier batches' reads and its own)."""
    collect, rng, snaps, posts, now = _tick_world(seed)
    due = [p for p in posts if p.posted_at <= now - timedelta(hours=1)]
    size = int(rng.integers(5, 30))
    batches = [due[i:i + size] for i in range(0, len(due), size)]
    current = list(posts)                                     # the store, as each batch would read it
    start = min(min(p.posted_at for p in batches[0]), now - collect.BASELINE_WINDOW)
    window = collect.covering(snaps, start, now)
    first = min((t for t, _ in window), default=start)
    history = [p for p in current if p.posted_at > first - collect.ATTRIBUTION_HORIZON]
    tick = collect.TickAttribution(window, history, now)
    compared = 0
    for batch in batches:
        since = min(min(p.posted_at for p in batch), now - collect.BASELINE_WINDOW)
        window = collect.covering(snaps, since, now)
        first = min((t for t, _ in window), default=since)
        live = [p for p in current if p.posted_at > first - collect.ATTRIBUTION_HORIZON]
        reads = {p.decision_id: (int(rng.integers(0, 90)), bool(rng.random() < 0.7)) for p in batch}
        read = {p.decision_id: collect._as_read(p, *reads[p.decision_id], now) for p in live if p.decision_id in reads}
        expected = collect.attribute_follows(window, [read.get(p.decision_id, p) for p in live], now)
        got = tick.follows(window, len(history) - len(live), list(read.values()))
        assert set(got) == set(read)
        for did, value in got.items():
            assert value == pytest.approx(expected[did], rel=1e-9, abs=1e-9), did
            compared += value > 0
        current = [read.get(p.decision_id, p) for p in current]
        history = [read.get(p.decision_id, p) for p in history]
        tick.record(read)
    assert compared > 10                                       # the comparison saw real (non-zero) follows


def test_tick_attribution_refuses_posts_out_of_order():
    with pytest.raises(ValueError, match="oldest first"):
        from xbotlib.jobs.collect import TickAttribution
        TickAttribution([(_t(0), 1), (_t(1), 2)], [LivePost("b", _t(2), 1), LivePost("a", _t(1), 1)], _t(3))
