"""One search through `zhiku mcp` over stdio, with the MCP SDK's own client (as an assistant does it).

package_test.sh runs it with the development venv's Python against the frozen binary, which has no
Python of its own on PATH:  mcp_probe.py KB QUERY -- COMMAND [ARG...]
Prints the tools the server offers and the search's first result as JSON; exits 1 on a tool error.
"""

import json
import os
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def probe(kb: str, query: str, command: list[str]) -> int:
    params = StdioServerParameters(command=command[0], args=[*command[1:], "mcp", "--kb", kb], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = sorted(t.name for t in (await session.list_tools()).tools)
        res = await session.call_tool("search", {"kb": kb, "query": query, "k": 3})
        if res.is_error:
            print(res.content[0].text, file=sys.stderr)
            return 1
        results = res.structured_content["results"]
        if not results:
            print(f"no passage found: {res.structured_content.get('note')}", file=sys.stderr)
            return 1
        print(json.dumps({"tools": tools, "first": results[0]}, ensure_ascii=False))
        return 0


if __name__ == "__main__":
    split = sys.argv.index("--")
    sys.exit(anyio.run(probe, sys.argv[1], sys.argv[2], sys.argv[split + 1:]))
