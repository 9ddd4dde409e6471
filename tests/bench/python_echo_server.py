"""The peer in `cargo bench -p capsule --bench stdio`: the same echo tool served by the
official Python MCP SDK (2.x, `MCPServer`, formerly FastMCP), over stdio."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("echo")


@server.tool()
def echo(message: str) -> str:
    """Returns the message unchanged."""
    return message


if __name__ == "__main__":
    server.run()
