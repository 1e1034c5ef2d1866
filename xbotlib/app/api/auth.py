"""Admin-token check for the API: ``token_matches`` (pure), ``admin_token_problem`` and
``check_admin_token`` (is the token strong enough for the address the API binds to),
``FailureThrottle`` (repeated failed authentications from one client address are answered slower and
slower) and ``AdminGate``, the ASGI middleware that refuses every HTTP request without the token
before anything else runs."""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import logging
import string
import time
from typing import Callable

from fastapi.responses import JSONResponse

from xbotlib.config import ConfigError

log = logging.getLogger("xbot.api")

# Basic first: browsers read the first scheme of a challenge and know Basic, not Bearer, so a
# browser opening /docs shows its sign-in box (any user name, ADMIN_TOKEN as the password).
REALM = 'Basic realm="xbot", Bearer realm="xbot"'

MIN_TOKEN_LENGTH = 16
# Tokens people type when asked for "a secret": refused (in any case, with digits or separators
# around them), however long the repetition makes them.
COMMON_TOKENS = frozenset("""
    admin administrator password passwd passw0rd secret token changeme change_me letmein welcome
    default test testing qwerty qwertyuiop asdf asdfgh asdfghjkl zxcvbnm abc abcdef iloveyou
    monkey dragon master root toor guest login xbot xbotadmin adminadmin adminpassword
    secretpassword supersecret topsecret mysecret mytoken apitoken admintoken accesstoken
    trustno1 hello helloworld example sample demo dummy foobar
""".split())
_SEQUENCES = (string.digits + string.digits, string.ascii_lowercase, "qwertyuiopasdfghjklzxcvbnm")
GENERATE_HINT = "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def token_matches(authorization: str | None, token: str) -> bool:
    """True when an ``Authorization`` header carries ``token`` as Bearer, or as the Basic password.

    ``authorization`` is the header as ASGI servers decode it (latin-1), so its bytes are the bytes
    the client sent; they are compared with the UTF-8 token by ``hmac.compare_digest``, whose time
    does not reveal how much matched.
    """
    if not authorization or not token:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    expected = token.encode()
    if scheme.lower() == "bearer":
        try:
            sent = value.strip().encode("latin-1")
        except UnicodeEncodeError:  # not something an HTTP header can carry
            return False
        return hmac.compare_digest(sent, expected)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _user, sep, password = decoded.partition(b":")
        return bool(sep) and hmac.compare_digest(password, expected)
    return False


UNAUTHORIZED = ("missing or wrong admin token: send 'Authorization: Bearer <ADMIN_TOKEN>' "
                "or HTTP Basic with ADMIN_TOKEN as the password")


def _unauthorized() -> JSONResponse:
    return JSONResponse({"detail": UNAUTHORIZED}, status_code=401, headers={"WWW-Authenticate": REALM})


class AdminGate:
    """ASGI middleware: every HTTP request needs the admin token before anything else runs.

    A route dependency alone is not enough: FastAPI parses a JSON body before it resolves
    dependencies, so a malformed body would answer 422 to a caller without a token.
    """

    def __init__(self, app, token: str, throttle: FailureThrottle | None = None):
        self.app = app
        self.token = token
        self.throttle = throttle if throttle is not None else FailureThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            address = (scope.get("client") or ("unknown",))[0]
            if wait := self.throttle.penalty(address):
                await asyncio.sleep(wait)  # this client waits; the event loop serves the others
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not token_matches(header, self.token):
                if wait := self.throttle.failed(address):
                    await asyncio.sleep(wait)
                await _unauthorized()(scope, receive, send)
                return
            self.throttle.succeeded(address)
        elif scope["type"] != "lifespan":
            return  # no websockets here
        await self.app(scope, receive, send)



# ----------------------------------------------------------------------------- token strength

def admin_token_problem(token: str) -> str | None:
    """Why ``token`` is too weak to guard the API, or None when it is fine.

    Weak: shorter than MIN_TOKEN_LENGTH characters; one character repeated; fewer than 5 distinct
    characters; a common word (``COMMON_TOKENS``) once its case, digits and separators are ignored,
    or repeated (``adminadminadmin1``); a run of a keyboard or digit sequence (``1234567890123456``).
    """
    if len(token) < MIN_TOKEN_LENGTH:
        return f"it is {len(token)} characters long (at least {MIN_TOKEN_LENGTH} are needed)"
    if len(set(token)) == 1:
        return f"it is one character ({token[0]!r}) repeated"
    if len(set(token)) < 5:
        return f"it uses only {len(set(token))} distinct characters"
    letters = "".join(c for c in token.lower() if c.isalpha())
    for word in sorted(COMMON_TOKENS, key=lambda w: (len(w), w)):  # the shortest word names it
        if letters and len(word) >= 3 and letters == word * (len(letters) // len(word)) \
                and len(letters) % len(word) == 0:
            return f"it is the common word {word!r} (ignoring case, repeats, digits and separators)"
    lowered = token.lower()
    if any(lowered in (seq * 3) or lowered in (seq * 3)[::-1] for seq in _SEQUENCES):
        return "it is a run of a keyboard or digit sequence"
    return None


def is_loopback(host: str) -> bool:
    """True when ``host`` (what ``xbot api --host`` binds) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_admin_token(token: str, host: str) -> str | None:
    """Refuse a weak ``token`` on a non-loopback ``host``; on loopback return a warning to print.

    Raises ``ConfigError`` naming what is wrong (never the token itself) and how to make a good one.
    Returns None when the token is strong.
    """
    problem = admin_token_problem(token)
    if problem is None:
        return None
    fix = f"set ADMIN_TOKEN to a long random secret, e.g. {GENERATE_HINT}"
    if not is_loopback(host):
        raise ConfigError(f"ADMIN_TOKEN is too weak to serve on {host!r}, which other machines can reach: "
                          f"{problem} ({fix})")
    return f"warning: ADMIN_TOKEN is weak ({problem}); accepted only because the API binds to {host} ({fix})"


# ----------------------------------------------------------------------------- failed authentications

class FailureThrottle:
    """Slows down repeated failed authentications, per client address.

    The first ``free`` failures from an address answer at once (a typo, a stale token); after that
    each failure waits ``base * 2**k`` seconds, capped at ``cap``, before its 401, and any request
    from that address waits out the penalty before its token is even looked at. A success resets
    the address. Waiting is ``await asyncio.sleep``, so other clients are served meanwhile. An
    address is forgotten ``forget_after`` seconds after its last failure; at most ``max_addresses``
    are remembered (the stalest are dropped first), so a flood of addresses cannot exhaust memory.
    Behind a reverse proxy every client has the proxy's address: run the throttle there instead.
    """

    def __init__(self, *, free: int = 5, base: float = 0.5, cap: float = 30.0, forget_after: float = 900.0,
                 max_addresses: int = 10_000, monotonic: Callable[[], float] = time.monotonic):
        self.free, self.base, self.cap = free, base, cap
        self.forget_after, self.max_addresses, self.monotonic = forget_after, max_addresses, monotonic
        self._state: dict[str, tuple[int, float, float]] = {}  # address -> (failures, blocked_until, last)
        self.failures_total = 0

    def delay(self, failures: int) -> float:
        """Seconds the ``failures``-th consecutive failure waits before its answer."""
        if failures <= self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - self.free - 1, 64))

    def penalty(self, address: str) -> float:
        """Seconds a request from ``address`` must still wait (0 when it is not being slowed down)."""
        state = self._state.get(address)
        return 0.0 if state is None else max(0.0, state[1] - self.monotonic())

    def failed(self, address: str) -> float:
        """Record a failure from ``address``; returns the seconds to wait before answering it."""
        now = self.monotonic()
        failures = self._state.get(address, (0, now, now))[0] + 1
        wait = self.delay(failures)
        self._state[address] = (failures, now + wait, now)
        self.failures_total += 1
        if wait and failures & (failures - 1) == 0:  # log at 2, 4, 8, ... failures, not every one
            log.warning("admin API: %d failed authentications in a row from %s; answering after %.1f s",
                        failures, address, wait)
        if len(self._state) > self.max_addresses:
            self._forget(now)
        return wait

    def succeeded(self, address: str) -> None:
        self._state.pop(address, None)

    def slowed_addresses(self) -> int:
        """Addresses whose requests wait right now."""
        now = self.monotonic()
        return sum(blocked > now for _, blocked, _ in self._state.values())

    def _forget(self, now: float) -> None:
        for address, (_, blocked, last) in list(self._state.items()):
            if blocked <= now and now - last > self.forget_after:
                del self._state[address]
        if len(self._state) > self.max_addresses:  # still too many: keep the most recent half
            keep = sorted(self._state.items(), key=lambda kv: kv[1][2])[-(self.max_addresses // 2):]
            self._state = dict(keep)
