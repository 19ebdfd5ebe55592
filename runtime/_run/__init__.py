"""Layer 3, one run in memory: the seq-numbered event log (``eventlog``) with its cursors
(``cursor``) and retention policies (``retention``), a run's status and snapshots, the
session-registry protocol.

Rule: imports trio, msgspec, the standard library and the layers below
(``_base``, ``_protocol``, ``_agent``). No HTTP.
"""
