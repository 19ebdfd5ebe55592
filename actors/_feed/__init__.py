"""The websocket event feed and the dashboard page: the feed's one home.

``protocol`` (sans-io commands, frames and websocket framing), ``tokens`` (sans-io read
tokens), ``websocket`` (RFC 6455 over a trio stream, on wsproto: handshake, frames, close),
``server`` (the feed server: listener, budgets, handshakes, statistics), ``connection`` (one
connection's actor: auth, commands, the writer), ``subscriptions`` (followed sessions and the
watches that wake them), ``page`` (the dashboard page over HTTP), ``listen`` (TCP listeners,
optionally shared by several processes with SO_REUSEPORT) and ``static/`` (the page's files).

Rule: the only place that speaks websockets (trio_websocket, wsproto). Imports
``runtime._base``, ``runtime._protocol`` and ``runtime._run`` (the event log, its cursors and
the registry protocol), never the client, the pool or the CLI.
"""
