"""The websocket event feed and the dashboard page: the feed's one home.

``protocol`` (sans-io commands and frames), ``server`` (the feed server: listener, limits,
statistics), ``connection`` (one connection's actor: auth, commands, subscriptions, writer),
``page`` (the dashboard page over HTTP) and ``static/`` (the page's files).

Rule: the only place that imports trio_websocket. Imports ``runtime._base``,
``runtime._protocol`` and ``runtime._run`` (the event log and the registry protocol), never the
client, the pool or the CLI.
"""
