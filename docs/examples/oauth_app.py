"""Sign users in with OpenRouter (OAuth PKCE): a tiny trio web app.

Each visitor gets their own OpenRouter API key, created by OpenRouter after
they approve your app; the app never sees their password and the key never
reaches the browser.

Routes:

* ``/``         a page with a sign-in link (or who is signed in).
* ``/login``    makes a PKCE verifier and its S256 challenge, keeps the
                verifier in this browser's server-side session, and redirects
                to OpenRouter's authorization page.
* ``/callback`` receives ``?code=``, exchanges it (with the verifier) for the
                user's key, opens a per-user ``OpenRouter`` client with that key
                and shows the key's label (the masked form), never the key.

Run it against OpenRouter (``OPENROUTER_BASE_URL`` is honoured)::

    python docs/examples/oauth_app.py --port 3000

or against the local emulator, which approves every sign-in at once::

    python docs/examples/oauth_app.py --emulator

then open http://127.0.0.1:3000/ in a browser. OpenRouter accepts an ``http``
callback only on localhost / 127.0.0.1 (any port); deploy behind https.

Only hypercorn and a bare ASGI callable: no web framework.
"""

from __future__ import annotations

import argparse
import html
import http.cookies
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from runtime import APIStatusError, OpenRouter

SESSION_COOKIE = "oauth_demo_session"

Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Session:
    """What the server remembers about one browser (never sent to it)."""

    def __init__(self) -> None:
        self.code_verifier: str | None = None  # set by /login, used once by /callback
        self.api_key: str | None = None  # the user's key, kept server-side only
        self.label: str | None = None  # the key's masked form, safe to show


class OAuthApp:
    """The ASGI application.

    Args:
        client: an open ``OpenRouter`` client of the app itself; it builds the
            authorization URL and exchanges codes (no key is needed for that).
        base_url: the API base URL for the per-user clients (``None``: the
            environment, then OpenRouter).
    """

    def __init__(self, client: OpenRouter, base_url: str | None = None) -> None:
        self._client = client
        self._base_url = base_url
        self._sessions: dict[str, Session] = {}

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        session_id, session = self._session(headers.get("cookie", ""))
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        path = scope["path"]
        if path == "/login":
            status, extra, body = self._login(scope, headers, session)
        elif path == "/callback":
            status, extra, body = await self._callback(query, session)
        elif path == "/":
            status, extra, body = 200, [], _home(session)
        else:
            status, extra, body = 404, [], _page("Not found", "<p>No such page.</p>")
        cookie = f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax"
        response_headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"set-cookie", cookie.encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body.encode()})

    def _session(self, cookie_header: str) -> tuple[str, Session]:
        cookies = http.cookies.SimpleCookie()
        try:
            cookies.load(cookie_header)
        except http.cookies.CookieError:
            pass
        morsel = cookies.get(SESSION_COOKIE)
        if morsel is not None and morsel.value in self._sessions:
            return morsel.value, self._sessions[morsel.value]
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = session = Session()
        return session_id, session

    def _login(
        self, scope: Mapping[str, Any], headers: Mapping[str, str], session: Session
    ) -> tuple[int, list[tuple[bytes, bytes]], str]:
        pair = self._client.o_auth.create_sha256_code_challenge()
        session.code_verifier = pair.code_verifier
        # Where OpenRouter sends the browser back: this app, as the browser reached it.
        host = headers.get("host") or "{}:{}".format(*scope["server"])
        callback = f"{scope.get('scheme', 'http')}://{host}/callback"
        url = self._client.o_auth.create_authorization_url(
            callback_url=callback,
            code_challenge=pair.code_challenge,
            code_challenge_method="S256",
        )
        link = html.escape(url)
        return 302, [(b"location", url.encode())], _page("Redirecting", f'<a href="{link}">Go</a>')

    async def _callback(
        self, query: Mapping[str, list[str]], session: Session
    ) -> tuple[int, list[tuple[bytes, bytes]], str]:
        code = query.get("code", [""])[-1]
        verifier, session.code_verifier = session.code_verifier, None  # single use
        if not code or verifier is None:
            body = '<p>No sign-in in progress. <a href="/login">Sign in</a></p>'
            return 400, [], _page("Sign-in failed", body)
        try:
            user = await self._client.o_auth.exchange_auth_code_for_api_key(
                code=code, code_verifier=verifier, code_challenge_method="S256"
            )
            # A client of the user's own, with the user's key.
            async with OpenRouter(api_key=user.key, base_url=self._base_url) as user_client:
                meta = await user_client.api_keys.get_current_key_metadata()
        except APIStatusError as exc:
            body = f"<p>OpenRouter said: {html.escape(exc.message)}</p>"
            return 403 if exc.status_code == 403 else 502, [], _page("Sign-in failed", body)
        session.api_key = user.key
        session.label = meta.label
        remaining = "no limit" if meta.limit_remaining is None else f"${meta.limit_remaining:.2f}"
        body = (
            f"<p>Signed in. Your key: <code id=label>{html.escape(meta.label)}</code></p>"
            f"<p>Credit left on it: {html.escape(remaining)}</p>"
        )
        return 200, [], _page("Signed in", body)


def _home(session: Session) -> str:
    if session.label is not None:
        body = f"<p>Signed in with <code id=label>{html.escape(session.label)}</code>.</p>"
    else:
        body = '<p><a href="/login">Sign in with OpenRouter</a></p>'
    return _page("OpenRouter OAuth demo", body)


def _page(title: str, body: str) -> str:
    return f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"


async def serve_oauth_app(
    host: str = "127.0.0.1",
    port: int = 3000,
    *,
    base_url: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app until cancelled; reports its URL (``http://host:port``) when listening.

    Start it with ``url = await nursery.start(serve_oauth_app, "127.0.0.1", 0)``.
    """
    async with OpenRouter(base_url=base_url) as client:
        config = Config()
        config.bind = [f"{host}:{port}"]
        config.accesslog = None
        app: Any = OAuthApp(client, base_url)
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(partial(serve, app, config, mode="asgi"))
            task_status.started(binds[0])


async def _run(host: str, port: int, emulator: bool) -> None:
    if not emulator:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve_oauth_app, host, port))
            print(f"Open {url}/ in a browser (Ctrl+C to stop).")
        return
    from runtime.emulator import open_emulator

    async with open_emulator() as server, trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve_oauth_app, host, port, base_url=server.base_url))
        print(f"Emulator at {server.base_url}; open {url}/ in a browser (Ctrl+C to stop).")


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--emulator", action="store_true", help="sign in against a local emulator")
    args = parser.parse_args()
    try:
        trio.run(_run, args.host, args.port, args.emulator)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
