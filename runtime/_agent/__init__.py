"""Layer 2, the sans-io agent: tools and their schemas, turn parameters, stop
conditions, input normalisation.

Rule: imports only the standard library, msgspec, ``runtime._base`` and ``runtime._protocol``.
No trio, no I/O: what a turn means, not how it runs.
"""
