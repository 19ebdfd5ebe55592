"""Layer 3, HTTP: the transport with retries and typed errors, and its HTTP/1.1
engine on trio streams.

Rule: the only place that imports httpx and h11. Imports ``_base``, ``_protocol`` and
``_telemetry`` below it, nothing above.
"""
