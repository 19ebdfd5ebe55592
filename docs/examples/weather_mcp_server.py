"""A tiny MCP server over stdio, with the standard library only.

It stands for any MCP server you would connect an agent to (a GitHub server, a
database server, ...). It speaks JSON-RPC 2.0, one message per line, and
offers one tool, ``get_forecast``, which reports progress for each day it
"computes" when the client asks for progress.

Run it by hand to see the protocol::

    python docs/examples/weather_mcp_server.py
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
"""

from __future__ import annotations

import json
import sys
from typing import Any

FORECAST_TOOL = {
    "name": "get_forecast",
    "description": "The weather forecast for a city, day by day.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "default": 2},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
}


def write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def forecast(request_id: Any, params: dict[str, Any]) -> dict[str, Any]:
    arguments = params.get("arguments") or {}
    city, days = arguments.get("city", "?"), arguments.get("days", 2)
    token = (params.get("_meta") or {}).get("progressToken")
    daily = []
    for day in range(1, days + 1):
        if token is not None:
            write(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {
                        "progressToken": token,
                        "progress": day,
                        "total": days,
                        "message": f"day {day} of {days}",
                    },
                }
            )
        daily.append({"day": day, "sky": "sunny" if day % 2 else "cloudy", "high_c": 18 + day})
    result = {"city": city, "daily": daily}
    return {"content": [{"type": "text", "text": json.dumps(result)}], "structuredContent": result}


def answer(message: dict[str, Any]) -> dict[str, Any]:
    method, params = message.get("method"), message.get("params") or {}
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "weather", "version": "1.0"},
        }
    if method == "tools/list":
        return {"tools": [FORECAST_TOOL]}
    if method == "tools/call" and params.get("name") == "get_forecast":
        return forecast(message["id"], params)
    raise LookupError(f"Method not found: {method}")


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if "id" not in message or "method" not in message:
            continue  # notifications (initialized, cancelled) need no answer here
        try:
            write({"jsonrpc": "2.0", "id": message["id"], "result": answer(message)})
        except LookupError as exc:
            error = {"code": -32601, "message": str(exc)}
            write({"jsonrpc": "2.0", "id": message["id"], "error": error})


if __name__ == "__main__":
    main()
