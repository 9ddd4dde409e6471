"""End-to-end tests of `capsule serve --transport http` with the official Python MCP SDK (2.x).

The server listens on 127.0.0.1 with port 0 and logs the address it got; the client connects
to that URL. `auto` mode must negotiate 2026-07-28 (`server/discover`, no session) and
`legacy` mode 2025-11-25 (`initialize`, a session), in the stateful and the stateless
server. Run by `cargo xtask test`, which sets:
  CAPSULE_BIN       the capsule binary
  CAPSULE_FIXTURES  folder with echo.wasm and hostile.wasm
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from mcp import Client, MCPError

BIN = os.environ["CAPSULE_BIN"]
FIXTURES = Path(os.environ["CAPSULE_FIXTURES"])

CONFIG = """
[plugins.hostile.limits]
fuel = 50_000_000
"""

EXPECTED_PROTOCOL = {"auto": "2026-07-28", "legacy": "2025-11-25"}


def make_folder() -> Path:
    root = Path(tempfile.mkdtemp(prefix="capsule-py-http-"))
    plugins = root / "plugins"
    plugins.mkdir()
    for name in ("echo", "hostile"):
        shutil.copy(FIXTURES / f"{name}.wasm", plugins / f"{name}.wasm")
    (root / "capsule.toml").write_text(CONFIG)
    return root


def start(root: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """Starts the server and returns it with the URL from its `listening on` line, once
    every plugin has loaded (it listens while they compile)."""
    server = subprocess.Popen(
        [BIN, "serve", "--transport", "http", "--port", "0", *extra,
         "--config", str(root / "capsule.toml"), "--plugins", str(root / "plugins"),
         "--cache-dir", str(root / "cache")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={"CAPSULE_LOG": "info", "PATH": os.environ.get("PATH", "")}, text=True,
    )
    assert server.stderr is not None
    url = None
    for line in server.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            url = found.group(1)
        if url and "every plugin loaded" in line:
            # Keep reading, so the server never blocks on a full stderr pipe.
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, url
    raise AssertionError(f"capsule exited with {server.wait()} before listening")


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def check(url: str, mode: str) -> None:
    async with Client(url, mode=mode) as client:
        assert client.protocol_version == EXPECTED_PROTOCOL[mode], (
            f"{mode} mode negotiated protocol {client.protocol_version}, "
            f"expected {EXPECTED_PROTOCOL[mode]}"
        )
        names = {tool.name for tool in (await client.list_tools()).tools}
        for expected in ("echo_echo", "echo_add", "hostile_spin"):
            assert expected in names, f"{expected} not in {sorted(names)}"

        result = await client.call_tool("echo_echo", {"message": "over http"})
        assert not result.is_error, result
        assert text_of(result) == "over http"
        assert result.structured_content == {"message": "over http"}, result

        try:
            await client.call_tool("echo_does_not_exist", {})
        except MCPError as err:
            assert "unknown tool `echo_does_not_exist`" in str(err), err
        else:
            raise AssertionError("unknown tool did not raise MCPError")

        spin = await client.call_tool("hostile_spin", {})
        assert spin.is_error and "ran out of fuel" in text_of(spin), spin

        results = await asyncio.gather(
            *(client.call_tool("echo_echo", {"message": f"n{i}"}) for i in range(20))
        )
        assert [text_of(r) for r in results] == [f"n{i}" for i in range(20)]
        print(f"  ok: {mode} mode (protocol {client.protocol_version}) at {url}")


async def main() -> int:
    root = make_folder()
    failures = 0
    try:
        for extra in ([], ["--stateless"]):
            server, url = start(root, extra)
            try:
                for mode in ("auto", "legacy"):
                    try:
                        await asyncio.wait_for(check(url, mode), timeout=120)
                    except Exception:  # report every failure, then fail the run
                        failures += 1
                        print(f"  FAILED: {mode} mode, server {extra}", file=sys.stderr)
                        traceback.print_exc()
            finally:
                server.terminate()
                code = server.wait(timeout=60)
                if code != 0:
                    failures += 1
                    print(f"  FAILED: SIGTERM ended the server with {code}, expected 0", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("python MCP HTTP client tests:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
