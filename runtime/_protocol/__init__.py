"""Layer 1, the sans-io protocol: SSE decoding, wire types, stream events, item
assembly, format converters, OAuth PKCE.

Rule: imports only the standard library, msgspec and ``runtime._base``. No trio, no httpx,
no I/O: bytes and values in, values out (the h11 way).
"""
