"""The sandbox X's route handlers: X API v2's requests and JSON, answered from the simulated world.

``XRoutes`` is a part of ``xserver.SandboxX`` (its base class), split out to keep each module readable:
the handlers read and change the sandbox's world (``audience``, ``_candidates``, tokens) under its
lock, exactly as methods of ``SandboxX``; the app, auth, rate limits and faults are in ``xserver``.
"""
from __future__ import annotations

import base64
import contextlib
import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xbotlib.sim.audience import ReplyTarget
from xbotlib.sim.candidates import Candidate, reply_candidates, snowflake
from xbotlib.sim.world import SimTweet
from xbotlib.sim.xprotocol import (NON_PUBLIC_MAX_AGE, PROBLEMS, TWEET_ID_RE, invalid_request, not_found, parse_x_time,
                                   problem, unknown_parameters, x_time)

# analytics.fields the simulated world measures -> its metric name (others X defines are not simulated,
# so they are left out of the answer: not measured, rather than a made-up 0)
ANALYTICS_METRICS: dict[str, str] = {"follows": "follows", "user_profile_clicks": "profile_visits",
                                     "url_clicks": "link_clicks", "impressions": "impressions", "likes": "likes",
                                     "replies": "replies", "retweets": "retweets", "quote_tweets": "quotes",
                                     "bookmarks": "bookmarks"}
ANALYTICS_FIELDS = frozenset({"app_install_attempts", "app_opens", "bookmarks", "detail_expands", "email_tweet",
                              "engagements", "follows", "hashtag_clicks", "id", "impressions", "likes", "media_views",
                              "permalink_clicks", "quote_tweets", "replies", "retweets", "shares", "timestamp",
                              "timestamped_metrics", "unfollows", "unlikes", "url_clicks", "user_profile_clicks"})
GRANULARITY: dict[str, timedelta | None] = {"total": None, "hourly": timedelta(hours=1), "daily": timedelta(days=1),
                                            "weekly": timedelta(weeks=1)}
MAX_BUCKETS = 24 * 31


def _data_and_errors(data: list, errors: list) -> JSONResponse:
    """X's 200 for a batch: ``data`` with what was found, ``errors`` (partial errors) with what was not;
    each key only when it has something (X omits empty ones)."""
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if errors:
        body["errors"] = errors
    return JSONResponse(body)


def _fields(request: Request, name: str) -> set[str]:
    return set(filter(None, request.query_params.get(name, "").split(",")))


def _public_metrics(counts: dict[str, int]) -> dict[str, int]:
    """A post's public_metrics under the spec's names (reposts are ``repost_count``)."""
    out = dict(counts)
    if "retweet_count" in out:
        out["repost_count"] = out.pop("retweet_count")
    return out


class XRoutes:
    """The route handlers of ``SandboxX`` (see the module docstring)."""

    async def _post_tweet(self, request: Request) -> Response:
        if refused := unknown_parameters("POST /2/tweets", request.query_params.keys()):
            return refused
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return invalid_request("request body is not valid JSON")
        if not isinstance(body, dict):
            return invalid_request("request body must be a JSON object with a `text` field")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return invalid_request("`text` must be a non-empty string", text=[text])
        if len(text) > 280:
            return invalid_request(f"`text` is {len(text)} characters; the limit is 280", text=[text[:40]])
        reply = body.get("reply")
        reply_to = None
        if reply is not None:
            reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if not isinstance(reply_to, str) or not TWEET_ID_RE.match(reply_to):
                return invalid_request("`reply.in_reply_to_tweet_id` must be a tweet id string", reply=[reply])
        with self._mutation():
            now = self.clock.now()
            if any(t.text == text for t in self.audience.posts()):
                return problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
            target = None
            if reply_to is not None:
                target = self._reply_target(reply_to, now)
                if target is None:
                    return problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you.")
            # X's ids carry a machine number beside the sequence; ours is the sandbox seed, so sandboxes
            # of several accounts posting at the same simulated instant never mint the same id
            tweet_id = snowflake(now, ((self.seed % 1024) << 11) | (len(self.audience.tweets) & 0x7FF))
            self.audience.post(tweet_id, text, now, target)
        return JSONResponse({"data": {"id": tweet_id, "text": text, "edit_history_post_ids": [tweet_id]}},
                            status_code=201)

    def _reply_target(self, tweet_id: str, now: datetime) -> ReplyTarget | None:
        if tweet_id in self._candidates:
            return self._candidates[tweet_id].target()
        own = self.audience.tweets.get(tweet_id)
        if own is None:
            return None
        seen = self.audience.metrics_at(tweet_id, now)
        hours = max(1 / 60, (now - own.posted_at).total_seconds() / 3600)
        engagements = seen.likes + seen.retweets + seen.replies + seen.quotes + seen.bookmarks
        return ReplyTarget(tweet_id, self.audience.followers_at(now), engagements / hours, own.posted_at)

    def _ids_param(self, request: Request) -> list[str] | JSONResponse:
        raw = request.query_params.get("ids", "")
        ids = [i for i in raw.split(",") if i] if raw else []
        if not ids:
            return invalid_request("The `ids` query parameter can not be empty", ids=[])
        if len(ids) > 100:
            return invalid_request(f"The number of values in the `ids` query parameter list [{len(ids)}] "
                                   "is not between 1 and 100", ids=[raw[:80]])
        bad = [i for i in ids if not TWEET_ID_RE.match(i)]
        if bad:
            return invalid_request(f"The `ids` query parameter value [{bad[0]}] is not valid", ids=[bad[0]])
        return ids

    async def _lookup(self, request: Request) -> Response:
        if refused := unknown_parameters("GET /2/tweets", request.query_params.keys()):
            return refused
        ids = self._ids_param(request)
        if isinstance(ids, JSONResponse):
            return ids
        fields = _fields(request, "post.fields") | (_fields(request, "expansions") & {"author_id"})
        private = sorted(fields & {"non_public_metrics", "organic_metrics"})
        data, errors = [], []
        with self._lock:
            self._refresh()
            now = self.clock.now()
            for tid in ids:
                own = self.audience.tweets.get(tid)
                cand = self._candidates.get(tid)
                if own is None and cand is None:
                    errors.append(not_found("tweet", tid, "ids"))
                    continue
                if private and (own is None or now - own.posted_at > NON_PUBLIC_MAX_AGE):
                    errors.append({"value": tid, "resource_id": tid, "resource_type": "tweet",
                                   "parameter": "post.fields", "field": private[0], "section": "data",
                                   "title": "Field Authorization Error",
                                   "detail": f"Sorry, you are not authorized to access '{private[0]}' on the Tweet "
                                             f"with ids: [{tid}] (only your own posts of the last 30 days).",
                                   "type": PROBLEMS + "not-authorized-for-field"})
                    continue
                data.append(self._own_item(own, now, fields) if own else self._candidate_item(cand, now, fields))
        return _data_and_errors(data, errors)

    def _own_item(self, tweet: SimTweet, now: datetime, fields: set[str]) -> dict:
        item: dict[str, Any] = {"id": tweet.tweet_id, "text": tweet.text, "edit_history_post_ids": [tweet.tweet_id]}
        m = self.audience.metrics_at(tweet.tweet_id, now)
        if "created_at" in fields:
            item["created_at"] = x_time(tweet.posted_at)
        if "author_id" in fields:
            item["author_id"] = self.user_id
        if "conversation_id" in fields:
            item["conversation_id"] = tweet.reply_to or tweet.tweet_id
        if "public_metrics" in fields:
            item["public_metrics"] = {"repost_count": m.retweets, "reply_count": m.replies, "like_count": m.likes,
                                      "quote_count": m.quotes, "bookmark_count": m.bookmarks,
                                      "impression_count": m.impressions}
        if "non_public_metrics" in fields:
            item["non_public_metrics"] = {"impression_count": m.impressions, "url_link_clicks": m.link_clicks,
                                          "user_profile_clicks": m.profile_visits}
        if "organic_metrics" in fields:
            item["organic_metrics"] = {"impression_count": m.impressions, "like_count": m.likes,
                                       "reply_count": m.replies, "retweet_count": m.retweets,
                                       "url_link_clicks": m.link_clicks, "user_profile_clicks": m.profile_visits}
        return item

    def _candidate_item(self, cand: Candidate, now: datetime, fields: set[str]) -> dict:
        item: dict[str, Any] = {"id": cand.tweet_id, "text": cand.text, "edit_history_post_ids": [cand.tweet_id]}
        if "created_at" in fields:
            item["created_at"] = x_time(cand.created_at)
        if "author_id" in fields:
            item["author_id"] = cand.author_id
        if "public_metrics" in fields:
            item["public_metrics"] = _public_metrics(cand.public_metrics(now))
        return item

    async def _analytics(self, request: Request) -> Response:
        if not (self.analytics_enabled and self.scenario.x.analytics):  # `xbot sandbox --no-analytics`, [x] analytics
            return problem(403, "Client Forbidden", "Your access level does not include the post analytics endpoint "
                           "(the sandbox runs with analytics off).", PROBLEMS + "client-forbidden")
        if refused := unknown_parameters("GET /2/tweets/analytics", request.query_params.keys()):
            return refused
        ids = self._ids_param(request)
        if isinstance(ids, JSONResponse):
            return ids
        try:
            start = parse_x_time(request.query_params["start_time"])
            end = parse_x_time(request.query_params["end_time"])
        except (KeyError, ValueError):
            return invalid_request("`start_time` and `end_time` are required ISO 8601 times (YYYY-MM-DDTHH:mm:ssZ)",
                                   start_time=[request.query_params.get("start_time")],
                                   end_time=[request.query_params.get("end_time")])
        if end < start:
            return invalid_request("`end_time` must not be before `start_time`", end_time=[x_time(end)])
        fields = _fields(request, "analytics.fields")
        bad = sorted(fields - ANALYTICS_FIELDS)
        if bad:
            return invalid_request(f"The `analytics.fields` value [{bad[0]}] is not one of "
                                   f"[{','.join(sorted(ANALYTICS_FIELDS))}]", **{"analytics.fields": [bad[0]]})
        granularity = request.query_params.get("granularity", "total")
        if granularity not in GRANULARITY:
            return invalid_request(f"The `granularity` value [{granularity}] is not one of "
                                   f"[{','.join(GRANULARITY)}]", granularity=[granularity])
        data, errors = [], []
        with self._lock:
            self._refresh()
            now = self.clock.now()
            end = min(end, now)
            start = min(start, end)
            for tid in ids:
                if tid not in self.audience.tweets:
                    errors.append(not_found("tweet", tid, "ids"))
                    continue
                data.append(self._analytics_item(tid, fields, start, end, GRANULARITY[granularity]))
        return _data_and_errors(data, errors)

    def _analytics_item(self, tid: str, fields: set[str], start: datetime, end: datetime,
                        step: timedelta | None) -> dict:
        """One post's analytics in X's shape: the requested counts as totals over [start, end], and with
        ``timestamped_metrics`` the same counts per bucket of the granularity (one bucket for 'total')."""
        wanted = [f for f in ANALYTICS_METRICS if f in fields]
        seen: dict[datetime, Any] = {}   # the post's counts at each edge, computed once (a bucket's edges repeat)

        def at(t: datetime) -> Any:
            if t not in seen:
                seen[t] = self.audience.metrics_at(tid, t)
            return seen[t]

        def counts(a: datetime, b: datetime) -> dict[str, int]:
            m0, m1 = at(a), at(b)
            return {f: getattr(m1, ANALYTICS_METRICS[f]) - getattr(m0, ANALYTICS_METRICS[f]) for f in wanted}

        item: dict[str, Any] = {"id": tid, **counts(start, end)}
        if "timestamp" in fields:
            item["timestamp"] = x_time(start)
        if "timestamped_metrics" in fields:
            edges = [start]
            while step is not None and edges[-1] + step < end and len(edges) < MAX_BUCKETS:
                edges.append(edges[-1] + step)
            edges.append(end)
            item["timestamped_metrics"] = [{"timestamp": x_time(a), "metrics": counts(a, b)}
                                           for a, b in zip(edges, edges[1:])]
        return item

    def _user(self, fields: set[str], now: datetime) -> dict:
        user: dict[str, Any] = {"id": self.user_id, "name": "xbot sandbox", "username": self.handle}
        if "public_metrics" in fields:
            user["public_metrics"] = {"followers_count": self.audience.followers_at(now),
                                      "following_count": self.scenario.account.following_count,
                                      "post_count": self.scenario.account.initial_tweet_count + len(self.audience.tweets),
                                      "listed_count": 0, "like_count": 0}
        if "created_at" in fields:
            user["created_at"] = x_time(self.audience.epoch)
        return user

    async def _me(self, request: Request) -> Response:
        if refused := unknown_parameters("GET /2/users/me", request.query_params.keys()):
            return refused
        fields = _fields(request, "user.fields")
        with self._lock:
            self._refresh()
            return JSONResponse({"data": self._user(fields, self.clock.now())})

    async def _timeline(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if refused := unknown_parameters("GET /2/users/:id/tweets", request.query_params.keys()):
            return refused
        if user_id != self.user_id:
            return JSONResponse({"errors": [not_found("user", user_id, "id")]})
        q = request.query_params
        try:
            max_results = int(q.get("max_results", "10"))
            start = parse_x_time(q["start_time"]) if "start_time" in q else None
            end = parse_x_time(q["end_time"]) if "end_time" in q else None
            offset = int(q.get("pagination_token", "0"))
        except ValueError:
            return invalid_request("max_results, start_time, end_time or pagination_token has a bad value",
                                   max_results=[q.get("max_results")], start_time=[q.get("start_time")])
        if not 5 <= max_results <= 100:
            return invalid_request(f"The `max_results` query parameter value [{max_results}] is not between 5 and 100",
                                   max_results=[str(max_results)])
        fields = _fields(request, "post.fields")
        with self._lock:
            self._refresh()
            now = self.clock.now()
            posts = [t for t in reversed(self.audience.posts())
                     if (start is None or t.posted_at >= start) and (end is None or t.posted_at <= end)]
            page = posts[offset:offset + max_results]
            data = [self._own_item(t, now, fields) for t in page]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta.update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if offset + max_results < len(posts):
            meta["next_token"] = str(offset + max_results)
        return JSONResponse({**({"data": data} if data else {}), "meta": meta})

    async def _search(self, request: Request) -> Response:
        q = request.query_params
        if refused := unknown_parameters("GET /2/tweets/search/recent", q.keys()):
            return refused
        query = q.get("query", "")
        if not 1 <= len(query) <= 512:
            return invalid_request("The `query` parameter must be 1 to 512 characters", query=[query[:40]])
        try:
            max_results = int(q.get("max_results", "10"))
        except ValueError:
            max_results = -1
        if not 10 <= max_results <= 100:
            return invalid_request(f"The `max_results` query parameter value [{q.get('max_results')}] is not between "
                                   "10 and 100", max_results=[q.get("max_results")])
        low = query.lower()
        # the topics the query asks about, by the keywords this world's audience knows them by
        words = self.scenario.vocabulary
        topics = [t for t in words.topics if any(re.search(r"\b" + re.escape(k), low) for k in words.topic_keywords[t])]
        expansions = _fields(request, "expansions")
        # expanding author_id carries the field itself, as on X (it is not a post.fields value)
        tweet_fields = _fields(request, "post.fields") | (expansions & {"author_id"})
        user_fields = _fields(request, "user.fields")
        with self._mutation():
            now = self.clock.now()
            window_start = now.replace(minute=0, second=0, microsecond=0)
            found = reply_candidates(self.scenario, self.seed, window_start, topics or words.topics)
            found.sort(key=lambda c: c.created_at, reverse=True)
            found = found[:max_results]
            for c in found:
                self._candidates[c.tweet_id] = c
            # keep only candidates young enough to be worth replying to (bounds the state file)
            cutoff = now - timedelta(hours=48)
            self._candidates = {k: c for k, c in self._candidates.items() if c.created_at >= cutoff}
        data = [self._candidate_item(c, now, tweet_fields) for c in found]
        body: dict[str, Any] = {"meta": {"result_count": len(data)}}
        if data:
            body["data"] = data
            body["meta"].update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if "author_id" in expansions:
            users = {}
            for c in found:
                user: dict[str, Any] = {"id": c.author_id, "name": c.author_username.replace("_", " "),
                                        "username": c.author_username}
                if "public_metrics" in user_fields:
                    user["public_metrics"] = {"followers_count": c.author_followers, "following_count": 300,
                                              "post_count": 5000, "listed_count": 10}
                users[c.author_id] = user
            body["includes"] = {"users": list(users.values())}
        return JSONResponse(body)

    async def _token(self, request: Request) -> Response:
        # parsed by hand: Starlette's request.form() needs python-multipart, which xbot does not depend on
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id = form.get("client_id")
        auth = request.headers.get("authorization", "")
        if not client_id and auth.startswith("Basic "):
            with contextlib.suppress(ValueError):
                client_id = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        if form.get("grant_type") != "refresh_token" or not client_id:
            return JSONResponse({"error": "invalid_request",
                                 "error_description": "grant_type=refresh_token and a client_id are required"},
                                status_code=400)
        with self._mutation():
            if form.get("refresh_token") != self.refresh_token:
                return JSONResponse({"error": "invalid_request",
                                     "error_description": "Value passed for the token was invalid."}, status_code=400)
            self._token_serial += 1
            self.token = f"sandbox-access-{self._token_serial}"
            self.refresh_token = f"sandbox-refresh-{self._token_serial}"
            access, refresh = self.token, self.refresh_token
        return JSONResponse({"token_type": "bearer", "expires_in": 7200, "access_token": access,
                             "scope": "tweet.read tweet.write users.read offline.access", "refresh_token": refresh})
