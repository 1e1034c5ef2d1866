"""The admin API's ``GET /metrics``: the figures of ``/api/metrics`` (``views.Metrics``) as Prometheus text exposition
format 0.0.4, written by prometheus-client, then the API process's own counters (``AuthCollector``).

The text of the figures is kept per figures (``FIGURES_TEXT``, keyed by the figures' own JSON without ``now``, which no
metric shows): a scrape whose figures did not change sends the kept text instead of building the families and
formatting them again (measured on 365 days x 10 accounts: 0.37 ms of CPU a scrape for the families and their text,
as much as the statement that reads the figures); the counters, which change between scrapes, are written each time.
"""
from __future__ import annotations

from typing import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from xbotlib.app.api.auth import FailureThrottle
from xbotlib.app.api.serving import Kept
from xbotlib.views import Metrics


def metric_families(m: Metrics) -> list[Metric]:
    """The figures of ``m`` as Prometheus metric families; unknown values are left out.

    All are gauges: each is a level now (followers, queue depth) or a count over a window that also
    goes down (posts today, gate rejections in 24 h), which a counter must never do. Counters
    (``_total``) are the API process's own running counts: see ``AuthCollector``."""
    base = {"account": m.account_id, "world": m.world}
    families: list[Metric] = []

    def gauge(name: str, help_: str, samples: Sequence[tuple[dict[str, str], float | None]]) -> None:
        extra = sorted({k for labels, _ in samples for k in labels})
        family = GaugeMetricFamily(name, help_, labels=[*base, *extra])
        for labels, value in samples:
            if value is not None:
                family.add_metric([*base.values(), *(labels[k] for k in extra)], float(value))
        families.append(family)

    gauge("xbot_followers", "followers in the latest snapshot", [({}, m.followers_today)])
    gauge("xbot_simulated", "1 when these figures come from the sandbox, not the real X", [({}, int(m.simulated))])
    gauge("xbot_fpki_avg_7d", "mean follows per 1000 impressions, pass-2 outcomes of 7 days", [({}, m.fpki_avg_7d)])
    gauge("xbot_posts_today", "posts published today (UTC)", [({}, m.posts_today)])
    gauge("xbot_queue_depth", "decisions still in the queue, by status",
          [({"status": s}, n) for s, n in m.queue_depth.items()])
    gauge("xbot_gate_rejections_24h", "content rejected by each gate in 24 h",
          [({"gate": g}, n) for g, n in m.gate_rejections_24h.items()])
    o = m.openai
    gauge("xbot_openai_spend_usd", "OpenAI cost settled today", [({}, o.spent_usd)])
    gauge("xbot_openai_reserved_usd", "OpenAI cost reserved by calls in flight", [({}, o.reserved_usd)])
    gauge("xbot_openai_budget_usd", "OpenAI daily budget", [({}, o.budget_usd)])
    gauge("xbot_openai_backoffs_today", "OpenAI calls refunded after a rate limit today", [({}, o.backoffs_today)])
    gauge("xbot_openai_circuit_open", "1 when insufficient_quota opened the circuit today", [({}, int(o.circuit_open))])
    gauge("xbot_job_last_run_timestamp", "start of each job's last run, unix seconds",
          [({"job": j.job}, j.started_at.timestamp() if j.started_at else None) for j in m.jobs])
    gauge("xbot_job_last_run_ok", "1 when each job's last run ended ok or skipped",
          [({"job": j.job}, int(j.status in ("ok", "skipped")) if j.status else None) for j in m.jobs])
    return families


class AuthCollector:
    """The API process's own counters: failed authentications since start and clients slowed down now."""

    def __init__(self, throttle: FailureThrottle):
        self.throttle = throttle

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("xbot_api_auth_failures", "failed admin-token checks since the API started",
                                  value=self.throttle.failures_total)
        yield GaugeMetricFamily("xbot_api_auth_slowed_clients",
                                "client addresses whose requests are being slowed down after failed authentications",
                                value=self.throttle.slowed_addresses())


class _Families:
    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposition(*collectors) -> str:
    """The text format 0.0.4 of ``collectors`` (objects with ``collect()``), in their order."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry).decode()


def prometheus_text(m: Metrics, *extra_collectors) -> str:
    """The metrics in Prometheus text exposition format 0.0.4 (``prometheus_client``), then those of
    ``extra_collectors`` (objects with ``collect()``): the text ``exposition`` writes for them all, the figures' part
    from ``FIGURES_TEXT`` when these figures were written before."""
    key = m.model_dump_json(exclude={"now"})  # every figure a metric shows, exactly; ~10 us
    text = FIGURES_TEXT.get(key)
    if text is None:
        text = exposition(_Families(metric_families(m)))
        FIGURES_TEXT.put(key, text)  # the oldest dropped when full: figures since changed, or not scraped
    return text + exposition(*extra_collectors) if extra_collectors else text


# the figures' text by their JSON (without now); an entry is never stale: other figures are another key
FIGURES_TEXT = Kept(max_entries=256)
