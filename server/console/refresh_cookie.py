"""The browser console's refresh token travels in an HttpOnly cookie, never in storage script can read.

The console signs in (and joins, and refreshes) with the header `X-Canvass-Refresh-Cookie: 1`:
the refresh token then comes back only as a cookie (HttpOnly, SameSite=Strict, Path=/api/auth,
Secure when `CANVASS_PUBLIC_URL` is https) and the JSON body's `refresh_token` is empty. The page
keeps the short-lived access token in a module variable. A script injected into the page could
still ask for a fresh access token while the page is open, but could not carry away the
refresh token, so what it steals dies with the access token (CANVASS_ACCESS_TOKEN_MINUTES).

The cookie is read only when the header is present: a cross-site form cannot set a header, and
a cross-origin fetch that sets it needs a CORS preflight the server does not grant. Phones and
scripts keep the JSON-body tokens (they send no header).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response
from litestar.datastructures import Cookie
from litestar.params import CookieParameter, HeaderParameter

from server.accounts.schemas import TokenPair
from server.settings import Settings

REFRESH_COOKIE = "canvass_refresh"
REFRESH_COOKIE_PATH = "/api/auth"
COOKIE_MODE_HEADER = "x-canvass-refresh-cookie"

CookieMode = Annotated[
    bool,
    HeaderParameter(name=COOKIE_MODE_HEADER, required=False,
              description="`1`/`true`: the browser console's mode; the refresh token travels only in an HttpOnly cookie."),
]
RefreshCookie = Annotated[
    str | None,
    CookieParameter(name=REFRESH_COOKIE, required=False,
              description="The console's refresh token (HttpOnly cookie; read only with the X-Canvass-Refresh-Cookie header)."),
]


def _cookie(settings: Settings, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=REFRESH_COOKIE, value=value, path=REFRESH_COOKIE_PATH, max_age=max_age, httponly=True,
        secure=settings.public_url.startswith("https://"), samesite="strict",
    )


def token_response(pair: TokenPair, settings: Settings, cookie_mode: bool, status_code: int) -> Response[TokenPair]:
    """The token pair as the caller asked for it: all in the body, or the refresh token as an HttpOnly cookie."""
    if not cookie_mode:
        return Response(pair, status_code=status_code)
    cookie = _cookie(settings, pair.refresh_token, settings.refresh_token_days * 86_400)
    return Response(msgspec.structs.replace(pair, refresh_token=""), status_code=status_code, cookies=[cookie])


def refresh_token_from(body_token: str | None, cookie_mode: bool, cookie_token: str | None) -> str | None:
    """The refresh token to use: the body's, else (console mode only) the cookie's."""
    return body_token or (cookie_token if cookie_mode else None) or None


def signed_out_response(settings: Settings, cookie_mode: bool) -> Response[None]:
    """204 for sign-out; in console mode it also deletes the refresh cookie."""
    return Response(None, status_code=204, cookies=[_cookie(settings, "", 0)] if cookie_mode else None)
