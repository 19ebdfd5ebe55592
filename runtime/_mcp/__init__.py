"""The MCP protocol, sans-io: JSON-RPC 2.0 messages, the MCP handshake and tool shapes.

Rule: imports only the standard library, msgspec, ``runtime._base``, ``runtime._protocol``
and ``runtime._agent``. No trio, no I/O: the connection actor (``actors/mcp.py``) moves
the bytes this layer builds and reads.
"""
