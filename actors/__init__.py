"""The supervised trio tasks of openrouter-trio: model call, tool call, session, feed.

What an actor is here
---------------------
An actor is **one async function run as one trio task**, with three things fixed:

* **an owner** — the nursery it runs in, held by whoever needs its result. Nothing
  runs detached: ``OpenRouter`` owns the session tasks (``runtime._client``), a
  session owns its model calls and tool rounds, a tool round owns one task per call,
  the feed server owns one task per connection. Leaving the owner's block cancels
  the actor, and an actor never outlives it.
* **its channels** — where messages go in and out. The main one is the run's
  :class:`~runtime._run.eventlog.EventLog`: a broadcast channel with one writer (the
  session and the model calls it runs) and any number of readers, each with its own
  cursor (``ModelResult`` streams, the session's own turn detection, feed
  connections). A reader never blocks the writer. Inputs come as arguments (the
  ``RunSpec``, the calls of a round); settled outcomes come back as the return value
  of the awaited actor (a tool round returns its outcomes in call order); live
  progress (a generator tool's preliminary results) goes through a callback that
  appends to the log. There is deliberately no memory channel per hop: an event is
  appended once and read in place by every consumer (DESIGN.md §2).
* **a supervision rule** — what a failure does to its owner:

  ============  ======================================================================
  actor         on failure
  ============  ======================================================================
  session       records the error in the run's state, closes the log with it (every
                consumer sees every event, then the error); never raises an
                ``Exception`` into the client's nursery, so one run never cancels
                another (``actors._session.run_session``)
  model call    raises a typed error to its session; retries happen inside the
                transport under the run's retry policy (``actors._model_call``)
  tool call     never raises for a tool's failure: it becomes an error output for
                the model (``tool_errors="raise"`` turns it into ``ToolError`` once
                the round settled); one failing call never cancels its siblings
                (``actors._tool_call``)
  feed          a failing connection is closed with a websocket close code and
  connection    logged; the server and the other connections go on (``actors._feed``)
  ============  ======================================================================

Cancellation is structural everywhere: a cancel scope around the owner ends the actor
at its next checkpoint, ``finally`` blocks run, and the log is closed cleanly.

Rule: ``actors`` imports the private ``runtime`` layers below the composition root
(``runtime._base``, ``_protocol``, ``_agent``, ``_run``, ``_http``); only the
composition root (``runtime._client``) starts actors, through one documented deferred
import. ``actors/_feed`` has its own, narrower rule (see its ``__init__``).
"""

from __future__ import annotations

__all__: list[str] = []
