"""Admin-token check for the API: ``token_matches`` (pure) and ``AdminGate``, the ASGI middleware that
refuses every HTTP request without the token before anything else runs."""
from __future__ import annotations

import base64
import binascii
import hmac

from fastapi.responses import JSONResponse

REALM = 'Bearer realm="xbot", Basic realm="xbot"'


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

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not token_matches(header, self.token):
                await _unauthorized()(scope, receive, send)
                return
        elif scope["type"] != "lifespan":
            return  # no websockets here
        await self.app(scope, receive, send)

