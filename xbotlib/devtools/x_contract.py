"""X's published API contract, as the official SDK ``xdk`` encodes it, and a checker for xbot's traffic.

Test support only (``xdk`` is a dev dependency): nothing in the product imports this module.

The contract of each endpoint xbot calls is read from ``xdk`` (generated from X's OpenAPI document
"X API v2", the production spec):

- the request: the HTTP method and path, and the query parameters, from the xdk client method's
  source and signature (``post_fields`` is sent as ``post.fields``; a parameter without a default is
  required; ``Literal[...]`` values are the only allowed values of ``*.fields``, ``expansions``,
  ``granularity``…); a JSON body is walked against the method's request model;
- the response: the method's return model (``xdk.schemas``); an error status is checked against the
  spec's ``Problem`` union (by its ``type``) or, for the problem types X documents beside it
  (``about:blank``, ``…/client-forbidden``, ``…/usage-capped``, …), the members every X problem has
  (type, title, detail, status — docs.x.com/x-api/fundamentals/response-codes-and-errors).

Responses are parsed with the pydantic models and also walked key by key, recursively: the models
allow extra keys, so a field X does not define would pass ``model_validate`` silently. Where the
model leaves an object open (``Post.non_public_metrics`` and ``organic_metrics`` are ``Dict[str, Any]``),
the keys X documents for it (docs.x.com/x-api/fundamentals/metrics and the data dictionary) are the
contract.

    log = ContractLog()
    client = XClient(base, token, clock=clock, transport=RecordingTransport(sandbox.transport(), log))
    ...
    assert log.issues == []

``register_operation`` adds an endpoint that xdk does not describe as a client method (the OAuth 2.0
token endpoint belongs to the sign-in work; it registers its own ``Operation`` here).

Size: one contract in one place — reading xdk, walking JSON, checking requests/responses and recording
traffic share the ``Operation``/``Issue`` types; split, each part would be a fragment of the same check.
"""
from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, Union, get_args, get_origin
from urllib.parse import parse_qsl

import httpx
from pydantic import BaseModel, ValidationError
from xdk import schemas
from xdk.posts.client import PostsClient
from xdk.users.client import UsersClient

# the endpoints xbot calls -> the xdk client method that is X's description of it
XBOT_ENDPOINTS: dict[str, tuple[type, str]] = {
    "POST /2/tweets": (PostsClient, "create"),
    "GET /2/tweets": (PostsClient, "get_by_ids"),
    "GET /2/tweets/analytics": (PostsClient, "get_analytics"),
    "GET /2/users/me": (UsersClient, "get_me"),
    "GET /2/tweets/search/recent": (PostsClient, "search_recent"),
    "GET /2/users/:id/tweets": (UsersClient, "get_posts"),
}
# objects the models leave open (Dict[str, Any]) -> the keys X documents for them
# (docs.x.com/x-api/fundamentals/metrics, docs.x.com/x-api/fundamentals/data-dictionary)
DOCUMENTED_KEYS: dict[tuple[str, str], frozenset[str]] = {
    ("Post", "non_public_metrics"): frozenset({"impression_count", "url_link_clicks", "user_profile_clicks",
                                               "engagements"}),
    ("Post", "organic_metrics"): frozenset({"impression_count", "like_count", "reply_count", "retweet_count",
                                            "url_link_clicks", "user_profile_clicks"}),
}
# the members every X problem carries (RFC 7807 as X uses it), for problem types outside the spec's union
PROBLEM_MEMBERS = frozenset({"type", "title", "detail", "status"})
PROBLEM_REQUIRED = ("type", "title", "detail")

IssueKind = Literal["undefined_field", "missing_required", "invalid_value", "bad_parameter", "missing_parameter",
                    "bad_parameter_value", "unknown_route", "invalid_body"]


@dataclass(frozen=True)
class Issue:
    """One way a request or response departs from the contract; ``where`` names the route and JSON path."""
    kind: IssueKind
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.where}: {self.detail}"


@dataclass(frozen=True)
class Param:
    name: str                             # as sent: 'post.fields'
    required: bool
    values: frozenset[str] | None = None  # the Literal values allowed, when the spec lists them
    is_list: bool = False                 # comma-separated
    is_int: bool = False


@dataclass(frozen=True)
class Operation:
    route: str                    # 'GET /2/users/:id/tweets' (the sandbox's and the client's endpoint name)
    method: str
    path: str                     # '/2/users/{id}/tweets'
    params: Mapping[str, Param]
    response_model: type[BaseModel] | None
    body_model: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()
    body_form: bool = False       # application/x-www-form-urlencoded (the OAuth token endpoint)

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and _path_regex(self.path).match(path.rstrip("/") or "/") is not None


@functools.lru_cache(maxsize=None)
def _path_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")


# ----------------------------------------------------------------------------- reading xdk

def _hints(fn: Callable) -> dict[str, Any]:
    # xdk's client modules use postponed annotations naming typing's Literal without importing it
    return typing.get_type_hints(fn, globalns={**vars(typing), **vars(sys.modules[fn.__module__])})


def _strip_optional(ann: Any) -> tuple[Any, bool]:
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return ann, False


def _literals(ann: Any) -> frozenset[str] | None:
    if get_origin(ann) is Literal:
        return frozenset(str(a) for a in get_args(ann))
    for a in get_args(ann):
        found = _literals(a)
        if found is not None:
            return found
    return None


def operation_from_xdk(route: str, client_cls: type, method_name: str) -> Operation:
    """The contract of one endpoint, read from the xdk client method that implements it."""
    fn = getattr(client_cls, method_name)
    source = inspect.getsource(fn)
    url = re.search(r'url = self\.client\.base_url \+ "([^"]+)"', source)
    verb = re.search(r"self\.client\.session\.(get|post|put|delete|patch)\(", source)
    if not url or not verb:
        raise RuntimeError(f"xdk {client_cls.__name__}.{method_name}: cannot read its path or HTTP method; "
                           "has xdk changed shape? (pin xdk to the version in pyproject.toml)")
    path, method = url.group(1), verb.group(1).upper()
    path_params = tuple(re.findall(r"\{(\w+)\}", path))
    hints = _hints(fn)
    sig = inspect.signature(fn)
    params: dict[str, Param] = {}
    body_model = None
    for name, p in sig.parameters.items():
        if name == "self" or name in path_params:
            continue
        ann, _ = _strip_optional(hints.get(name, Any))
        if name == "body":
            body_model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
            continue
        wire = name[: -len("_fields")] + ".fields" if name.endswith("_fields") else name
        # (pagination tokens are sent by xdk's paginator, not by name in the method body)
        if wire != name and not re.search(rf'params\["{re.escape(wire)}"\]', source):
            raise RuntimeError(f"xdk {client_cls.__name__}.{method_name}: argument {name!r} is not sent as "
                               f"{wire!r}; has xdk changed shape?")
        params[wire] = Param(wire, required=p.default is inspect.Parameter.empty, values=_literals(ann),
                             is_list=get_origin(ann) in (list, typing.List), is_int=ann is int)
    ret = hints.get("return")
    if get_origin(ret) in (typing.Iterator, Iterable) or getattr(get_origin(ret), "__name__", "") == "Iterator":
        ret = get_args(ret)[0]
    response_model = ret if isinstance(ret, type) and issubclass(ret, BaseModel) else None
    return Operation(route, method, path, params, response_model, body_model, path_params)


_EXTRA: dict[str, Operation] = {}


def register_operation(op: Operation) -> None:
    """Add (or replace) the contract of an endpoint xdk has no client method for (e.g. POST /2/oauth2/token)."""
    _EXTRA[op.route] = op


@functools.lru_cache(maxsize=1)
def _xdk_operations() -> dict[str, Operation]:
    return {route: operation_from_xdk(route, cls, name) for route, (cls, name) in XBOT_ENDPOINTS.items()}


def operations() -> dict[str, Operation]:
    return {**_xdk_operations(), **_EXTRA}


def operation_for(method: str, path: str) -> Operation | None:
    # the most specific template first: /2/tweets/analytics before /2/tweets/{id}
    for op in sorted(operations().values(), key=lambda o: (len(o.path_params), -len(o.path))):
        if op.matches(method, path):
            return op
    return None


# ----------------------------------------------------------------------------- walking JSON against a model

def walk(value: Any, ann: Any, where: str, owner: tuple[str, str] | None = None) -> list[Issue]:
    """Every place ``value`` departs from the annotation: keys the model does not define, required keys
    missing, values of the wrong type, Literal values outside the list."""
    if ann is Any or ann is object:
        return []
    origin = get_origin(ann)
    if origin in (Union, types.UnionType):
        args = get_args(ann)
        if value is None and type(None) in args:
            return []
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return walk(value, members[0], where, owner)
        chosen = _discriminate(value, members)
        if chosen is not None:
            return walk(value, chosen, where, owner)
        tries = [walk(value, m, where, owner) for m in members]
        return min(tries, key=len)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            return [Issue("invalid_value", where, f"expected a list, got {_short(value)}")]
        (item,) = get_args(ann) or (Any,)
        return [i for n, v in enumerate(value) for i in walk(v, item, f"{where}[{n}]")]
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            return [Issue("invalid_value", where, f"expected an object, got {_short(value)}")]
        allowed = DOCUMENTED_KEYS.get(owner) if owner else None
        if allowed is None:
            return []
        return [Issue("undefined_field", f"{where}.{k}", f"{owner[0]}.{owner[1]} documents only {sorted(allowed)}")
                for k in value if k not in allowed]
    if origin is Literal:
        return [] if value in get_args(ann) else [
            Issue("invalid_value", where, f"{value!r} is not one of {list(get_args(ann))}")]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return _walk_model(value, ann, where)
    if ann is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif ann is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif ann is bool:
        ok = isinstance(value, bool)
    elif ann is str:
        ok = isinstance(value, str)
    else:
        return []
    return [] if ok else [Issue("invalid_value", where, f"expected {ann.__name__}, got {_short(value)}")]


def _walk_model(value: Any, model: type[BaseModel], where: str) -> list[Issue]:
    if not isinstance(value, dict):
        return [Issue("invalid_value", where, f"expected a {model.__name__} object, got {_short(value)}")]
    by_key = {(f.alias or name): (name, f) for name, f in model.model_fields.items()}
    issues: list[Issue] = []
    for key, v in value.items():
        if key not in by_key:
            issues.append(Issue("undefined_field", f"{where}.{key}",
                                f"{model.__name__} defines no {key!r} (it has: {', '.join(sorted(by_key))})"))
            continue
        name, f = by_key[key]
        issues += walk(v, f.annotation, f"{where}.{key}", (model.__name__, name))
    for key, (_, f) in by_key.items():
        if f.is_required() and key not in value:
            issues.append(Issue("missing_required", f"{where}.{key}", f"{model.__name__} requires {key!r}"))
    return issues


def _discriminate(value: Any, members: list) -> Any:
    """For a union of models told apart by a Literal ``type`` (X's Problem), the member ``value`` names."""
    if not isinstance(value, dict) or "type" not in value:
        return None
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel) and "type" in m.model_fields:
            if value["type"] in get_args(m.model_fields["type"].annotation):
                return m
    return None


def _short(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value, default=str)[:60]}"


def _problem_types() -> dict[str, type[BaseModel]]:
    out = {}
    for m in get_args(schemas.Problem):
        for t in get_args(m.model_fields["type"].annotation):
            out[t] = m
    return out


def check_problem(body: Any, where: str) -> list[Issue]:
    """An error body: one of the spec's problems by its ``type``, else the members every X problem has."""
    if not isinstance(body, dict):
        return [Issue("invalid_value", where, f"an error body must be a problem object, got {_short(body)}")]
    model = _problem_types().get(body.get("type"))
    if model is not None:
        return _parse(body, model, where) + _walk_model(body, model, where)
    issues = [Issue("undefined_field", f"{where}.{k}", f"a problem of type {body.get('type')!r} has only "
                    f"{sorted(PROBLEM_MEMBERS)}") for k in body if k not in PROBLEM_MEMBERS]
    issues += [Issue("missing_required", f"{where}.{k}", "every X problem has type, title and detail")
               for k in PROBLEM_REQUIRED if k not in body]
    return issues


def _parse(body: Any, model: type[BaseModel], where: str) -> list[Issue]:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        # a missing required key is reported by the walk (as missing_required), not twice
        return [Issue("invalid_value", f"{where}.{'.'.join(str(p) for p in e['loc'])}", e["msg"])
                for e in exc.errors() if e["type"] != "missing"]
    return []


# ----------------------------------------------------------------------------- requests and responses

def check_request(method: str, path: str, query: Iterable[tuple[str, str]], body: Any = None) -> list[Issue]:
    """A request against the operation's parameters (names, required, Literal values) and body model."""
    op = operation_for(method, path)
    if op is None:
        return [Issue("unknown_route", f"{method.upper()} {path}", "xbot's contract has no such endpoint")]
    where = op.route
    issues: list[Issue] = []
    seen: dict[str, str] = {}
    for name, raw in query:
        if name in seen:
            issues.append(Issue("bad_parameter", f"{where} ?{name}", "parameter sent twice"))
        seen[name] = raw
        param = op.params.get(name)
        if param is None:
            issues.append(Issue("bad_parameter", f"{where} ?{name}",
                                f"X defines no query parameter {name!r} here (it has: {', '.join(sorted(op.params))})"))
            continue
        values = raw.split(",") if param.is_list else [raw]
        if param.is_list and (not raw or any(not v for v in values)):
            issues.append(Issue("bad_parameter_value", f"{where} ?{name}", f"empty item in {raw!r}"))
        if param.values is not None:
            issues += [Issue("bad_parameter_value", f"{where} ?{name}",
                             f"{v!r} is not one of X's values ({', '.join(sorted(param.values))})")
                       for v in values if v and v not in param.values]
        if param.is_int and not re.fullmatch(r"-?\d+", raw):
            issues.append(Issue("bad_parameter_value", f"{where} ?{name}", f"{raw!r} is not an integer"))
    issues += [Issue("missing_parameter", f"{where} ?{p.name}", "X requires this parameter")
               for p in op.params.values() if p.required and p.name not in seen]
    if op.body_model is not None:
        if body is None:
            issues.append(Issue("invalid_body", where, f"X requires a JSON body ({op.body_model.__name__})"))
        else:
            issues += _parse(body, op.body_model, f"{where} body") + _walk_model(body, op.body_model, f"{where} body")
    elif body is not None and not op.body_form:
        issues.append(Issue("invalid_body", where, "X defines no body for this request"))
    return issues


def check_response(method: str, path: str, status: int, body: Any) -> list[Issue]:
    """A response against the operation's response model (2xx) or X's problem shapes (errors)."""
    op = operation_for(method, path)
    if op is None:
        return [Issue("unknown_route", f"{method.upper()} {path}", "xbot's contract has no such endpoint")]
    where = f"{op.route} {status}"
    if status >= 400:
        return check_problem(body, where)
    if op.response_model is None:
        return []
    return _parse(body, op.response_model, where) + _walk_model(body, op.response_model, where)


# ----------------------------------------------------------------------------- recording traffic

@dataclass
class Exchange:
    route: str
    method: str
    path: str
    query: list[tuple[str, str]]
    request_body: Any
    status: int
    response_body: Any
    issues: list[Issue]


@dataclass
class ContractLog:
    """Every exchange seen, with its issues; ``summary()`` counts them per kind and route."""
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def issues(self) -> list[Issue]:
        return [i for e in self.exchanges for i in e.issues]

    def routes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.exchanges:
            out[e.route] = out.get(e.route, 0) + 1
        return out

    def count(self, kind: str) -> int:
        return sum(1 for i in self.issues if i.kind == kind)

    def observe(self, request: httpx.Request, response: httpx.Response) -> Exchange:
        method, path = request.method, request.url.path
        query = parse_qsl(request.url.query.decode() if isinstance(request.url.query, bytes) else request.url.query,
                          keep_blank_values=True)
        op = operation_for(method, path)
        ctype = request.headers.get("content-type", "")
        raw = request.content
        if not raw:
            req_body = None
        elif "json" in ctype:
            req_body = json.loads(raw)
        else:
            req_body = dict(parse_qsl(raw.decode()))
        try:
            resp_body = response.json()
        except ValueError:
            resp_body = None
        issues = check_request(method, path, query, req_body if "json" in ctype else None)
        if op is not None and op.body_form and req_body is None:
            issues.append(Issue("invalid_body", op.route, "X requires a form body"))
        if resp_body is None and response.content:
            issues.append(Issue("invalid_value", f"{op.route if op else path} {response.status_code}",
                                "the response body is not JSON"))
        elif response.content:
            issues += check_response(method, path, response.status_code, resp_body)
        ex = Exchange(op.route if op else f"{method} {path}", method, path, query, req_body, response.status_code,
                      resp_body, issues)
        self.exchanges.append(ex)
        return ex


class RecordingTransport(httpx.BaseTransport):
    """An httpx transport that passes every request to ``inner`` and checks the pair into ``log``."""

    def __init__(self, inner: httpx.BaseTransport, log: ContractLog):
        self.inner = inner
        self.log = log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self.inner.handle_request(request)
        response.read()
        self.log.observe(request, response)
        return response

    def close(self) -> None:
        self.inner.close()
