"""The dashboard page's HTTP server: static files and the feed's address, over h11 on trio.

One job: serve ``actors/_feed/static/`` (``index.html``, ``app.js``, ``style.css``) and
``/config.json`` (where the websocket feed listens) over plain HTTP/1.1 on
loopback or a LAN. The websocket feed itself is served by ``actors._feed.server``; this
module knows nothing about it but its port.

Invariants:

* Read-only and tiny: ``GET`` and ``HEAD`` of four fixed paths, one request per
  connection (``Connection: close``), bodies loaded once at start-up. Anything
  else gets 404 / 405 / 400; a client that stalls is dropped after
  ``REQUEST_TIMEOUT`` seconds.
* The page carries no secret: the feed token lives in the page URL's fragment
  (``#token=...``), which browsers never send to the server.
* Every response forbids framing, sniffing and inline script (a strict
  Content-Security-Policy), so the page cannot be turned against its viewer.
"""

from __future__ import annotations

import functools
import logging
from importlib import resources
from typing import Final

import h11
import msgspec
import trio

from actors._feed.listen import open_listeners
from runtime._base.errors import ConfigurationError

__all__ = ["REQUEST_TIMEOUT", "serve_dashboard_page"]

REQUEST_TIMEOUT: Final = 10.0
"""Seconds a client has to send its request and read the answer."""

_FILES: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

_SECURITY_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; "
        b"connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; "
        b"form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"connection", b"close"),
)

_MAX_REQUEST: Final = 16 * 1024
_logger = logging.getLogger("runtime.dashboard")


def _load(feed_port: int) -> dict[str, tuple[bytes, bytes]]:
    folder = resources.files("actors._feed").joinpath("static")
    pages = {
        path: (folder.joinpath(name).read_bytes(), content_type.encode())
        for path, (name, content_type) in _FILES.items()
    }
    config = msgspec.json.encode({"feed_port": feed_port, "feed_path": "/"})
    pages["/config.json"] = (config, b"application/json")
    return pages


async def _respond(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    status: int,
    body: bytes,
    content_type: bytes,
    *,
    head: bool = False,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *_SECURITY_HEADERS,
        *extra,
    ]
    data = conn.send(h11.Response(status_code=status, headers=headers))
    if not head and body:
        data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
    data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
    await stream.send_all(data)


async def _handle(pages: dict[str, tuple[bytes, bytes]], stream: trio.abc.Stream) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
    try:
        with trio.move_on_after(REQUEST_TIMEOUT):
            try:
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    conn.receive_data(bytes(await stream.receive_some(_MAX_REQUEST)))
                    event = conn.next_event()
            except h11.RemoteProtocolError:
                if conn.our_state is h11.IDLE or conn.our_state is h11.SEND_RESPONSE:
                    await _respond(conn, stream, 400, b"Bad request.\n", b"text/plain")
                return
            if not isinstance(event, h11.Request):
                return
            method = event.method.upper()
            target = event.target.decode("latin-1").split("?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                await _respond(
                    conn,
                    stream,
                    405,
                    b"Method not allowed.\n",
                    b"text/plain",
                    extra=((b"allow", b"GET, HEAD"),),
                )
                return
            page = pages.get(target)
            if page is None:
                await _respond(
                    conn, stream, 404, b"Not found.\n", b"text/plain", head=method == b"HEAD"
                )
                return
            body, content_type = page
            await _respond(conn, stream, 200, body, content_type, head=method == b"HEAD")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        # One bad connection must never take the server down with it.
        _logger.exception("The dashboard page server failed on one connection.")
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            try:
                await stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass


async def serve_dashboard_page(
    host: str | None,
    port: int,
    *,
    feed_port: int,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the dashboard page over HTTP until cancelled.

    Supports ``port = await nursery.start(serve_dashboard_page, host, 0,
    feed_port=...)``, which returns the bound port once it listens.

    Args:
        host: the interface to bind (``None``: all).
        port: the TCP port (0: any free port).
        feed_port: the websocket feed's port, published as ``/config.json``.
        reuse_port: bind with ``SO_REUSEPORT`` (several processes, one port).

    Raises:
        ConfigurationError: ``feed_port`` is not a port number, or ``reuse_port``
            on a platform without ``SO_REUSEPORT``.
        OSError: the address cannot be bound.
    """
    if type(feed_port) is not int or not 0 < feed_port < 65536:
        raise ConfigurationError(f"feed_port must be a TCP port number, got {feed_port!r}.")
    pages = _load(feed_port)
    listeners = await open_listeners(host, port, reuse_port=reuse_port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, functools.partial(_handle, pages), listeners)
        task_status.started(listeners[0].socket.getsockname()[1])
