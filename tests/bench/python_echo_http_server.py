"""The peer in `cargo bench -p capsule --bench http`: the same echo tool served by the
official Python MCP SDK (2.x, `MCPServer`) over streamable HTTP.

Usage: python_echo_http_server.py PORT [--stateless]"""

import logging
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("echo", log_level="WARNING")


@server.tool()
def echo(message: str) -> str:
    """Returns the message unchanged."""
    return message


if __name__ == "__main__":
    logging.disable(logging.INFO)
    stateless = "--stateless" in sys.argv[2:]
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        stateless_http=stateless,
        json_response=stateless,
    )
