"""Layer 3b, runs beyond one process: Redis Streams as the event store, the run
registry, the work queue of the workers, checkpoints and tool-call idempotency keys.

Rule: imports trio, msgspec, ``coredis`` (the optional ``openrouter-trio[redis]``
extra, imported where it is used, so that every module loads without it), the
standard library and the layers below (``_base``, ``_protocol``, ``_agent``,
``_run``). No HTTP and no actors: a worker that runs sessions is composed above,
in ``runtime._cli``.
"""
