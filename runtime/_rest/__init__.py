"""Layer 4, the REST surface: keys, OAuth, models, chat and legacy completions,
credits, activity, responses.

Rule: imports ``_base``, ``_protocol`` and ``_http`` (through its transport, never httpx itself).
"""
