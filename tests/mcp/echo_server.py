"""A tiny external MCP server (the Python `mcp` package's MCPServer) over stdio, for the `mcp`
action's test: `shout` upper-cases its text, `fail` reports a tool error, `slow` sleeps."""

import asyncio

from mcp.server.mcpserver import MCPServer

server = MCPServer("echo")


@server.tool()
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper() + "!"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ValueError(f"refused: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleeps, then answers."""
    await asyncio.sleep(seconds)
    return "done"


server.run()
