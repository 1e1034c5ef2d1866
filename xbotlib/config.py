"""All of xbot's settings, read from the environment and `.env`, typed and validated at start-up.

Every setting is declared once in ``SETTINGS`` (name, type, default, help). ``load_settings``
reads them, and an invalid value stops with a ``ConfigError`` naming the variable, the value
and what was expected. ``Settings`` is immutable; tests and the demo build their own with
``load_settings(env={...})`` or ``settings.replace(...)``.

Size: every setting is declared here once (table, parsers, the typed ``Settings``), so that one file
answers "what can be configured and how is it checked"; splitting it would scatter that answer.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# the checkout (or source tree) xbotlib runs from: migrations/, notebooks/, schedules/, scenarios/ live here
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """The workspace root when XBOT_HOME is unset: the checkout's ``.xbot`` (a source checkout has
    pyproject.toml beside the package), else ``~/.xbot``. Never the current folder: every command
    finds the same database, reports and logs whichever folder it runs from."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / ".xbot"
    return Path.home() / ".xbot"


DEFAULT_HOME = str(default_home())


class ConfigError(ValueError):
    """A setting has a value xbot cannot use. The message names the variable, the value and the fix."""


def _parse_bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} is not a boolean: {raw!r} (expected true or false)")


def _parse_int(name: str, raw: str, lo: int | None = None, hi: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} is not an integer: {raw!r} (expected a whole number)") from None
    _check_range(name, raw, value, lo, hi)
    return value


def _parse_float(name: str, raw: str, lo: float | None = None, hi: float | None = None) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} is not a number: {raw!r} (expected e.g. 0.5)") from None
    if value != value:  # NaN
        raise ConfigError(f"{name} is not a number: {raw!r} (expected e.g. 0.5)")
    _check_range(name, raw, value, lo, hi)
    return value


def _check_range(name: str, raw: str, value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        raise ConfigError(f"{name} is out of range: {raw!r} (expected a value {bounds})")


def _parse_db_url(name: str, raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not re.match(r"^postgres(ql)?(\+psycopg)?://", raw):
        # the error is printed: never echo a password that came with the bad URL
        raise ConfigError(f"{name} is not a postgres URL: {_mask(raw, url=True)!r} (expected postgresql://user:pass@host:5432/dbname, "
                          "or leave it unset for the embedded database)")
    return raw.replace("postgresql+psycopg://", "postgresql://")


def file_in_the_way(folder: Path) -> Path | None:
    """The file standing where ``folder`` or one of its parents would be created (its nearest existing part, when
    that is not a folder), or None: creating the folder there would fail mid-command, so callers refuse first."""
    folder = folder.resolve()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return None if existing.is_dir() else existing


def _parse_home(name: str, raw: str) -> str:
    if not raw.strip():
        return DEFAULT_HOME
    home = Path(raw.strip()).expanduser().resolve()
    existing = file_in_the_way(home)   # under a file, creating pgdata/ or logs/ would raise mid-command
    if existing is not None:
        raise ConfigError(f"{name} is not a folder: {raw!r} ({existing} exists and is not a folder); point {name} at "
                          "a folder (it is created if missing), or unset it for the default")
    return str(home)


def _parse_http_url(name: str, raw: str) -> str:
    raw = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", raw):
        raise ConfigError(f"{name} is not an http(s) URL: {raw!r} (expected e.g. https://api.x.com)")
    return raw


def _parse_tz(name: str, raw: str) -> str:
    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tz directory such as 'America'
        raise ConfigError(f"{name} is not a time zone: {raw!r} (expected an IANA name such as Europe/Berlin or UTC)") from None
    return raw.strip()


def _parse_account(name: str, raw: str) -> str:
    raw = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", raw):
        raise ConfigError(f"{name} is not a valid account id: {raw!r} (expected letters, digits, _ . -, at most 64)")
    return raw


def _parse_hours(name: str, raw: str) -> tuple[int, ...]:
    try:
        hours = tuple(sorted({int(h) for h in raw.split(",") if h.strip()}))
    except ValueError:
        raise ConfigError(f"{name} is not a list of hours: {raw!r} (expected e.g. 7,9,11,13)") from None
    if not hours or any(h < 0 or h > 23 for h in hours):
        raise ConfigError(f"{name} has no hours or an hour outside 0-23: {raw!r} (expected e.g. 7,9,11,13)")
    return hours


def _parse_live_posts(name: str, raw: str) -> bool | str:
    """LIVE_POSTS: true, false or 'shadow' (the live world, read for real; nothing ever written to X)."""
    if raw.strip().lower() == "shadow":
        return "shadow"
    try:
        return _parse_bool(name, raw)
    except ConfigError:
        raise ConfigError(f"{name} is not true, false or shadow: {raw!r} (expected true to post to live X, "
                          "shadow to plan and measure against live X without ever posting, "
                          "or false for the sandbox)") from None


def _parse_fernet_keys(name: str, raw: str) -> str | None:
    """XBOT_SECRET_KEY: one or more Fernet keys (32 url-safe base64 bytes each), comma-separated; never echoed."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for i, key in enumerate(keys, 1):
        try:
            ok = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
        except (ValueError, UnicodeEncodeError):
            ok = False
        if not ok:
            raise ConfigError(f"{name} key #{i} is not a Fernet key (32 url-safe base64-encoded bytes, 44 characters); "
                              "make one with: python -c \"from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())\"")
    return ",".join(keys) or None


def _str(name: str, raw: str) -> str | None:
    return raw if raw.strip() else None


@dataclass(frozen=True)
class Setting:
    env: str
    attr: str
    default: str | None
    parse: Callable[[str, str], Any]
    help: str
    secret: bool = False


def _rng(fn, lo=None, hi=None):
    return lambda name, raw: fn(name, raw, lo, hi)


SETTINGS: tuple[Setting, ...] = (
    # database
    Setting("XBOT_DATABASE_URL", "database_url", None, _parse_db_url,
            "PostgreSQL 14+ URL; unset = embedded PostgreSQL (pgserver) under XBOT_HOME/pgdata", secret=True),
    Setting("XBOT_HOME", "home", DEFAULT_HOME, _parse_home,
            "workspace root: embedded database (pgdata/), logs (logs/) and reports (reports/; with the default, the "
            "checkout's reports/); default the checkout's .xbot; a relative path is taken from the current folder"),
    Setting("XBOT_DB_POOL_MAX", "db_pool_max", "8", _rng(_parse_int, 1, 100), "max connections in the pool"),
    # posting switches
    Setting("POSTING_DISABLED", "posting_disabled", "true", _parse_bool,
            "true = the posting job sends nothing anywhere (the safe default)"),
    Setting("LIVE_POSTS", "live_posts", "false", _parse_live_posts,
            "true = post to live X (needs POSTING_DISABLED=false and X credentials); shadow = plan against and "
            "read the live account but never post (records what it would have posted); false = the sandbox"),
    Setting("POSTS_PER_HOUR_CAP", "posts_per_hour_cap", "2", _rng(_parse_int, 0, 100), "max posts per account per hour"),
    Setting("POSTS_PER_DAY_CAP", "posts_per_day_cap", "8", _rng(_parse_int, 0, 1000), "max posts per account per day"),
    Setting("POST_MAX_ATTEMPTS", "post_max_attempts", "3", _rng(_parse_int, 1, 20),
            "attempts before a decision is marked failed"),
    # planning
    Setting("PLAN_POSTS_PER_DAY", "plan_posts_per_day", "4", _rng(_parse_int, 0, 48), "posts the plan job schedules per day"),
    Setting("PLAN_REPLIES_PER_DAY", "plan_replies_per_day", "1", _rng(_parse_int, 0, 48), "replies planned per day"),
    Setting("PLAN_CANDIDATES", "plan_candidates", "4", _rng(_parse_int, 1, 20), "candidates generated per decision"),
    Setting("POSTING_HOURS", "posting_hours", "7,9,11,13,15,17,19,21", lambda n, r: _parse_hours(n, r),
            "local hours the timing bandit chooses from (comma-separated 0-23)"),
    Setting("ROTATION_MAX_RUN", "rotation_max_run", "3", _rng(_parse_int, 1, 100),
            "rotation gate: no hook pattern or topic more than N times in a row"),
    Setting("QUALITY_MIN_READABILITY", "quality_min_readability", "0.2", _rng(_parse_float, 0, 1),
            "quality gate: readability floor (0..1)"),
    Setting("BANNED_PHRASES", "banned_phrases", "as an ai,lorem ipsum,click here,guaranteed returns",
            lambda n, r: tuple(p.strip().lower() for p in r.split(",") if p.strip()),
            "quality gate: comma-separated phrases never posted"),
    # account
    Setting("XBOT_ACCOUNT_ID", "account_id", "default", _parse_account, "the account this process acts for"),
    Setting("XBOT_TIMEZONE", "timezone", "UTC", _parse_tz, "the account's time zone (posting hours are local)"),
    # X
    Setting("X_API_BASE_URL", "x_api_base_url", "https://api.x.com", _parse_http_url, "X API v2 base URL"),
    Setting("X_SANDBOX_URL", "x_sandbox_url", None, lambda n, r: _parse_http_url(n, r) if r.strip() else None,
            "URL of a running `xbot sandbox`; unset = the in-process sandbox"),
    Setting("X_ACCESS_TOKEN", "x_access_token", None, _str, "OAuth 2.0 user-context access token", secret=True),
    Setting("X_REFRESH_TOKEN", "x_refresh_token", None, _str, "OAuth 2.0 refresh token", secret=True),
    Setting("X_CLIENT_ID", "x_client_id", None, _str, "OAuth 2.0 client id (for token refresh)"),
    Setting("X_CLIENT_SECRET", "x_client_secret", None, _str, "OAuth 2.0 client secret", secret=True),
    Setting("X_TIMEOUT_S", "x_timeout_s", "10", _rng(_parse_float, 0.1, 120), "X request timeout in seconds"),
    # X sign-in (OAuth 2.0 PKCE; `xbot auth login`) and the stored tokens
    Setting("XBOT_SECRET_KEY", "secret_key", None, lambda n, r: _parse_fernet_keys(n, r),
            "Fernet key(s) encrypting stored X tokens (NEW,OLD to rotate); make one: python -c \"from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"", secret=True),
    Setting("X_AUTHORIZE_URL", "x_authorize_url", "https://x.com/i/oauth2/authorize", _parse_http_url,
            "X's OAuth 2.0 authorize page (`xbot auth login` opens it)"),
    Setting("X_OAUTH_CALLBACK_PORT", "x_oauth_callback_port", "8976", _rng(_parse_int, 0, 65535),
            "port of `xbot auth login`'s loopback callback; the X app lists http://127.0.0.1:PORT/callback"),
    Setting("X_TOKEN_REFRESH_MARGIN_S", "x_token_refresh_margin_s", "300", _rng(_parse_int, 0, 7000),
            "refresh a stored access token this many seconds before it expires"),
    # OpenAI
    Setting("OPENAI_API_KEY", "openai_api_key", None, _str,
            "OpenAI key; unset = offline template generator", secret=True),
    Setting("OPENAI_BASE_URL", "openai_base_url", None, lambda n, r: _parse_http_url(n, r) if r.strip() else None,
            "any OpenAI-compatible base URL; unset = OpenAI's"),
    Setting("OPENAI_MODEL", "openai_model", "gpt-4o-mini", lambda n, r: r.strip() or "gpt-4o-mini", "chat model"),
    Setting("OPENAI_EMBEDDING_MODEL", "openai_embedding_model", "text-embedding-3-small",
            lambda n, r: r.strip() or "text-embedding-3-small", "embedding model for novelty"),
    Setting("OPENAI_DAILY_BUDGET_USD", "openai_daily_budget_usd", "5", _rng(_parse_float, 0, 10000),
            "daily OpenAI spend limit in USD"),
    Setting("OPENAI_TIMEOUT_S", "openai_timeout_s", "30", _rng(_parse_float, 0.1, 600), "OpenAI request timeout"),
    # reward weights (DESIGN.md)
    Setting("REWARD_W_FPKI", "reward_w_fpki", "0.5", _rng(_parse_float, -10, 10), "reward weight of fpki"),
    Setting("REWARD_W_RETWEET", "reward_w_retweet", "0.3", _rng(_parse_float, -10, 10), "reward weight of retweet_rate"),
    Setting("REWARD_W_REPLY", "reward_w_reply", "0.15", _rng(_parse_float, -10, 10), "reward weight of reply_rate"),
    Setting("REWARD_W_NOVELTY", "reward_w_novelty", "0.05", _rng(_parse_float, -10, 10), "reward weight of novelty"),
    Setting("REWARD_W_DUP", "reward_w_dup", "0.1", _rng(_parse_float, -10, 10), "reward penalty weight of dup_penalty"),
    # learning
    Setting("LEARN_MIN_NEW_SAMPLES", "learn_min_new_samples", "5", _rng(_parse_int, 1, 100000),
            "fresh outcomes needed before any (re)training"),
    Setting("LEARN_RETRAIN_SAMPLES", "learn_retrain_samples", "25", _rng(_parse_int, 1, 100000),
            "new samples that trigger a retrain before the weekly one"),
    Setting("LEARN_USE_LIGHTGBM", "learn_use_lightgbm", "true", _parse_bool, "try LightGBM, fall back to ridge"),
    Setting("NOVELTY_MIN", "novelty_min", "0.15", _rng(_parse_float, 0, 1), "duplicate gate: minimum novelty"),
    # admin API
    Setting("ADMIN_TOKEN", "admin_token", None, _str, "bearer token for the admin API (required to serve it)",
            secret=True),
)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    home: str = DEFAULT_HOME
    db_pool_max: int = 8
    posting_disabled: bool = True
    live_posts: bool | str = False  # True, False or "shadow"
    posts_per_hour_cap: int = 2
    posts_per_day_cap: int = 8
    post_max_attempts: int = 3
    plan_posts_per_day: int = 4
    plan_replies_per_day: int = 1
    plan_candidates: int = 4
    posting_hours: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    rotation_max_run: int = 3
    quality_min_readability: float = 0.2
    banned_phrases: tuple[str, ...] = ("as an ai", "lorem ipsum", "click here", "guaranteed returns")
    account_id: str = "default"
    timezone: str = "UTC"
    x_api_base_url: str = "https://api.x.com"
    x_sandbox_url: str | None = None
    x_access_token: str | None = None
    x_refresh_token: str | None = None
    x_client_id: str | None = None
    x_client_secret: str | None = None
    x_timeout_s: float = 10.0
    secret_key: str | None = None
    x_authorize_url: str = "https://x.com/i/oauth2/authorize"
    x_oauth_callback_port: int = 8976
    x_token_refresh_margin_s: int = 300
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_embedding_model: str = "text-embedding-3-small"
    openai_daily_budget_usd: float = 5.0
    openai_timeout_s: float = 30.0
    reward_w_fpki: float = 0.5
    reward_w_retweet: float = 0.3
    reward_w_reply: float = 0.15
    reward_w_novelty: float = 0.05
    reward_w_dup: float = 0.1
    learn_min_new_samples: int = 5
    learn_retrain_samples: int = 25
    learn_use_lightgbm: bool = True
    novelty_min: float = 0.15
    admin_token: str | None = None
    # where each value came from (env, .env or default), for `xbot doctor`
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @property
    def home_path(self) -> Path:
        """The workspace root (XBOT_HOME), absolute."""
        return Path(self.home).expanduser().resolve()

    @property
    def reports_path(self) -> Path:
        """Where notebook runs publish their reports and ``index.html``: the checkout's top-level
        ``reports/`` while XBOT_HOME is the checkout's ``.xbot`` (the default), else XBOT_HOME/reports —
        either way one place, whichever folder a command runs from."""
        if self.home_path == (PROJECT_ROOT / ".xbot").resolve():
            return PROJECT_ROOT / "reports"
        return self.home_path / "reports"

    @property
    def log_path(self) -> Path:
        """The log file the daemon, the demo and the database holder append to: XBOT_HOME/logs/xbot.log."""
        return self.home_path / "logs" / "xbot.log"

    @property
    def posting_mode(self) -> str:
        """'disabled', 'sandbox', 'shadow' or 'live' — see ``posting_mode_reason``."""
        if self.posting_disabled:
            return "disabled"
        if self.live_posts == "shadow":
            return "shadow"
        return "live" if self.live_posts else "sandbox"

    @property
    def world(self) -> str:
        """Which world plans read and outcomes come from: 'live' when posting to live X or shadowing it."""
        return "live" if self.posting_mode in ("live", "shadow") else "sandbox"

    def posting_mode_reason(self) -> str:
        mode = self.posting_mode
        if mode == "disabled":
            shadow = (" (LIVE_POSTS=shadow takes effect only with POSTING_DISABLED=false)"
                      if self.live_posts == "shadow" else "")
            return ("posting disabled: POSTING_DISABLED=true (the default) — the posting job sends nothing; "
                    "set POSTING_DISABLED=false to post to the sandbox, and also LIVE_POSTS=shadow to rehearse "
                    "against live X or LIVE_POSTS=true to post there" + shadow)
        if mode == "shadow":
            return (f"SHADOW mode against live X at {self.x_api_base_url}: POSTING_DISABLED=false and "
                    "LIVE_POSTS=shadow — plans against the real account and reads its real metrics, but the "
                    "posting job never writes to X: each due decision ends 'skipped' with last_error 'shadow' "
                    "(what it would have posted); set LIVE_POSTS=true to go live")
        if mode == "sandbox":
            where = self.x_sandbox_url or "the in-process sandbox"
            return f"posting to the sandbox ({where}): POSTING_DISABLED=false and LIVE_POSTS=false"
        return f"posting to LIVE X at {self.x_api_base_url}: POSTING_DISABLED=false and LIVE_POSTS=true"

    def reward_weights(self) -> dict[str, float]:
        return {"fpki": self.reward_w_fpki, "retweet_rate": self.reward_w_retweet,
                "reply_rate": self.reward_w_reply, "novelty": self.reward_w_novelty, "dup_penalty": self.reward_w_dup}

    def masked(self) -> list[tuple[str, str, str, str]]:
        """Rows of (ENV_NAME, shown value, source, help) with secrets masked."""
        rows = []
        for s in SETTINGS:
            value = getattr(self, s.attr)
            if value is None:
                shown = "(unset)"
            elif isinstance(value, tuple):
                shown = ",".join(map(str, value))
            elif s.secret:
                shown = _mask(str(value), url=s.env.endswith("_URL"))
            else:
                shown = str(value)
            rows.append((s.env, shown, self.sources.get(s.env, "default"), s.help))
        return rows


def _mask(value: str, url: bool = False) -> str:
    if url:  # user:PASSWORD@ and ?password=… are the secret parts of a URL
        value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", value)
        return re.sub(r"(?i)([?&]password=)[^&]*", r"\1****", value)
    return "****" + value[-4:] if len(value) > 8 else "****"


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a .env file (KEY=VALUE lines, # comments, optional quotes). A malformed line is an error.

    ``KEY=value  # note`` drops the trailing comment; inside quotes a ``#`` is kept.
    """
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno} is not KEY=VALUE: {line!r} (fix or remove the line)")
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"{path}:{lineno} has no valid variable name: {line!r} (expected KEY=VALUE)")
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            rest = value[end + 1:].strip() if end != -1 else ""
            if end == -1 or (rest and not rest.startswith("#")):
                raise ConfigError(f"{path}:{lineno} has a badly quoted value: {line!r} "
                                  "(close the quote; nothing but a # comment may follow it)")
            value = value[1:end]
        else:
            # an unquoted ' #' starts a comment: `POSTING_DISABLED=true  # safe` means true
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[key] = value
    return values


def load_settings(env: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Read every setting from ``env`` (default: os.environ) over ``.env`` over the defaults.

    Raises ``ConfigError`` on the first invalid value, naming variable, value and expectation.
    """
    if env is None:
        env = os.environ
        file_values = read_dotenv(dotenv if dotenv is not None else Path(".env"))
    else:
        file_values = read_dotenv(dotenv) if dotenv is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        if s.env in env:
            raw, source = env[s.env], "env"
        elif s.env in file_values:
            raw, source = file_values[s.env], ".env"
        else:
            raw, source = s.default, "default"
        values[s.attr] = None if raw is None else s.parse(s.env, raw)
        sources[s.env] = source
    settings = Settings(**values, sources=sources)
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    flag = "shadow" if s.posting_mode == "shadow" else "true"  # shadow reads live X: it needs the same as live
    # stored tokens (`xbot auth login`) are in the database, which settings cannot see: X_CLIENT_ID says
    # they are meant to be used; without it, only a bootstrap X_ACCESS_TOKEN can reach X
    if s.posting_mode in ("live", "shadow") and not s.x_access_token and not s.x_client_id:
        raise ConfigError(f"LIVE_POSTS={flag} with POSTING_DISABLED=false needs X_ACCESS_TOKEN (an OAuth 2.0 "
                          "user-context token, a bootstrap) or a signed-in account: set X_CLIENT_ID and XBOT_SECRET_KEY "
                          "and run `xbot auth login`; or set LIVE_POSTS=false to use the sandbox")
    if s.posting_mode in ("live", "shadow") and s.x_sandbox_url:
        raise ConfigError(f"LIVE_POSTS={flag} conflicts with X_SANDBOX_URL={s.x_sandbox_url!r} "
                          "(unset X_SANDBOX_URL to reach live X, or set LIVE_POSTS=false)")
