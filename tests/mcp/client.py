"""An independent MCP client (the Python `mcp` package) driving Atlas's MCP server.

Usage: client.py stdio MODE ATLAS_BIN ARGS...  |  client.py http MODE URL TOKEN
MODE is `auto` (newest protocol) or `legacy` (the `initialize` handshake). Prints one JSON
object with what each step saw; the Rust test asserts on it. Every wait is bounded.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def error_of(coro):
    try:
        result = await coro
    except MCPError as e:
        return {"code": e.error.code, "message": e.error.message}
    return {"no_error": True, "is_error": result.is_error, "text": text_of(result)}


async def drive(target, mode):
    out = {}
    async with Client(target, mode=mode, read_timeout_seconds=30) as client:
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        listed = await client.call_tool("list_workflows", {})
        out["workflows"] = json.loads(text_of(listed))["workflows"]
        ran = await client.call_tool(
            "run_workflow", {"workflow": "mcp-echo", "arguments": {"word": "from-python"}}
        )
        out["run"] = {"is_error": ran.is_error, "outcome": json.loads(text_of(ran))}
        run_id = out["run"]["outcome"].get("run_id")
        got = await client.call_tool("get_run", {"run_id": run_id})
        out["get_run"] = json.loads(text_of(got))
        hist = await client.call_tool("history", {"workflow": "mcp-echo", "limit": 5})
        out["history"] = json.loads(text_of(hist))
        out["unknown_tool"] = await error_of(client.call_tool("no_such_tool", {}))
        out["unknown_workflow"] = await error_of(
            client.call_tool("run_workflow", {"workflow": "no-such-workflow"})
        )
        out["wrong_argument"] = await error_of(
            client.call_tool("run_workflow", {"workflow": "mcp-echo", "arguments": {"nope": 1}})
        )
        out["wrong_type"] = await error_of(
            client.call_tool("run_workflow", {"workflow": "mcp-echo", "arguments": {"word": 5}})
        )
        out["missing_field"] = await error_of(client.call_tool("get_run", {}))
        out["command"] = json.loads(text_of(await client.call_tool("command", {"text": "echo mcp"})))
        resources = await client.list_resources()
        out["resources"] = sorted(str(r.uri) for r in resources.resources)
        read = await client.read_resource("atlas://workflows/mcp-echo")
        out["resource_text"] = read.contents[0].text
        recent = await client.read_resource("atlas://runs/recent")
        out["recent"] = json.loads(recent.contents[0].text)
    return out


async def main():
    kind, mode = sys.argv[1], sys.argv[2]
    if kind == "stdio":
        target = StdioServerParameters(command=sys.argv[3], args=sys.argv[4:], env=dict(os.environ))
        out = await asyncio.wait_for(drive(target, mode), 90)
    else:
        url, token = sys.argv[3], sys.argv[4]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            target = streamable_http_client(url, http_client=http)
            out = await asyncio.wait_for(drive(target, mode), 90)
    print(json.dumps(out))


asyncio.run(main())
