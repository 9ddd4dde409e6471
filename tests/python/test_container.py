"""The container image, run by Docker, driven by the official Python MCP SDK (2.x).

Run by `cargo xtask test` after it built the image and started its own Docker daemon; it sets:
  DOCKER_HOST      that daemon's socket
  CAPSULE_IMAGE    the image to run
  CAPSULE_K8S      deploy/k8s (the ConfigMap and Secret are served by the image here)

Every container runs the way deploy/k8s runs it: read-only root filesystem, no capabilities,
no privilege escalation. Checked:
  - stdio: `docker run -i IMAGE` serves a client that lists the tools and calls one;
  - the process in the container runs as the image's non-root user (65532);
  - the plugins load from the cache precompiled into the image (nothing compiles at start),
    with the image's config and with deploy/k8s's ConfigMap + Secret mounted;
  - HTTP: `docker run --network host IMAGE serve --transport http` answers /readyz and a
    tools/call from the host, and exits 0 on `docker stop` (SIGTERM);
  - HTTP as deploy/k8s runs it (its args, ConfigMap and Secret): probes answer whatever
    the Host, calls under the Service's name are served, another name gets 421.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from mcp import Client, StdioServerParameters

IMAGE = os.environ["CAPSULE_IMAGE"]
K8S = Path(os.environ["CAPSULE_K8S"])

# What deploy/k8s's Deployment asks of the container runtime, as `docker run` flags.
HARDENED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
# The image's user (Dockerfile `USER`).
UID = 65532
# Longest wait for a container to start serving: the plugins are precompiled, so this is
# only a bound for a slow machine.
START = 60.0


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def assert_warm(output: str, what: str) -> None:
    """`capsule check` output: every plugin loaded from the precompiled cache, no errors."""
    loaded = [line for line in output.splitlines() if line.startswith("ok ")]
    assert loaded, f"{what}: no plugin loaded:\n{output}"
    cold = [line for line in loaded if "precompiled, from cache" not in line]
    assert not cold, f"{what}: plugins compiled at start instead of loading the image's cache:\n" + "\n".join(cold)
    assert ", 0 errors" in output, f"{what}: check reported errors:\n{output}"
    print(f"  ok: {what}: {len(loaded)} plugins precompiled, from cache")


def check_warm_with_image_config() -> None:
    run = docker("run", "--rm", *HARDENED, IMAGE, "check")
    assert run.returncode == 0, f"`capsule check` in the image failed ({run.returncode}):\n{run.stdout}{run.stderr}"
    assert_warm(run.stdout, "image config")


def k8s_mounts(tmp: str) -> list[str]:
    """deploy/k8s's ConfigMap and Secret written to `tmp`, as `docker run` flags mounting them
    where the Deployment mounts them."""
    config = yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]
    secrets = yaml.safe_load((K8S / "secret.yaml").read_text())["stringData"]
    config_dir, secrets_dir = Path(tmp, "config"), Path(tmp, "secrets")
    for folder, files in ((config_dir, config), (secrets_dir, secrets)):
        folder.mkdir()
        folder.chmod(0o755)
        for name, body in files.items():
            (folder / name).write_text(body)
            (folder / name).chmod(0o644)
    return ["-v", f"{config_dir}:/etc/capsule:ro", "-v", f"{secrets_dir}:/run/secrets/capsule:ro"]


def check_warm_with_k8s_config() -> None:
    with tempfile.TemporaryDirectory(prefix="capsule-k8s-") as tmp:
        run = docker("run", "--rm", *HARDENED, *k8s_mounts(tmp), IMAGE, "check")
    assert run.returncode == 0, f"`capsule check` with the k8s ConfigMap failed ({run.returncode}):\n{run.stdout}{run.stderr}"
    assert_warm(run.stdout, "deploy/k8s ConfigMap + Secret")


def check_runs_as_non_root() -> None:
    """The uid of the serving process, read from /proc on the host."""
    started = docker("run", "-d", "-i", *HARDENED, IMAGE)
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        pid = docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip()
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(UID)] * 4, f"capsule in the container runs as uids {uids}, expected {UID}"
        print(f"  ok: the container's capsule runs as uid {UID} (real, effective, saved, fs)")
    finally:
        docker("rm", "-f", container)


async def check_stdio() -> None:
    server = StdioServerParameters(
        command="docker",
        args=["run", "-i", "--rm", *HARDENED, "-e", "CAPSULE_LOG=warn", IMAGE],
        env={"DOCKER_HOST": os.environ["DOCKER_HOST"], "PATH": os.environ.get("PATH", "")},
    )
    started = time.monotonic()
    async with Client(server) as client:
        ready = time.monotonic() - started
        tools = await client.list_tools()
        names = {tool.name for tool in tools.tools}
        for expected in ("text_word_count", "hash_hash", "tables_csv_to_markdown"):
            assert expected in names, f"{expected} not in {sorted(names)}"
        result = await client.call_tool("text_word_count", {"text": "one two three"})
        assert not result.is_error, result
        assert result.structured_content == {"words": 3, "lines": 1, "characters": 13, "bytes": 13}, result
        print(f"  ok: stdio through `docker run -i`: {len(names)} tools, a call answered; "
              f"docker run to initialized in {ready:.2f}s (protocol {client.protocol_version})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, container: str) -> float:
    """Seconds until /readyz answers 200; fails if the container exits first."""
    started = time.monotonic()
    while time.monotonic() - started < START:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError):
            pass
        state = docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        if state != "true":
            logs = docker("logs", container)
            raise AssertionError(f"the HTTP container exited before /readyz answered:\n{logs.stderr}")
        time.sleep(0.05)
    raise AssertionError(f"/readyz did not answer 200 within {START:.0f}s")


async def check_http() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = docker(
        "run", "-d", "--network", "host", *HARDENED, IMAGE,
        "serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(port),
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        ready = wait_ready(base, container)
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            body = response.read().decode()
        async with Client(f"{base}/mcp") as client:
            result = await client.call_tool("hash_hash", {"input": "abc"})
            assert not result.is_error, result
            assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in text_of(result), result
        stopped = docker("stop", "--time", "30", container)
        assert stopped.returncode == 0, stopped.stderr
        code = docker("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
        assert code == "0", f"capsule exited {code} on SIGTERM, expected 0:\n{docker('logs', container).stderr}"
        print(f"  ok: HTTP through `docker run --network host`: /readyz 200 after {ready:.2f}s ({body.strip()}), "
              "tools/call answered, exit 0 on docker stop")
    finally:
        docker("rm", "-f", container)


def post_call(base: str, host: str) -> tuple[int, str]:
    """A stateless JSON-RPC tools/call with the given Host header: (status, body)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "text_word_count", "arguments": {"text": "a b"}}})
    request = urllib.request.Request(f"{base}/mcp", data=body.encode(), method="POST", headers={
        "Host": host, "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25",
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


async def check_http_k8s() -> None:
    """The Deployment's args and the ConfigMap's [server]: probes on any Host, calls under
    the Service's names, 421 for another name, exit 0 on SIGTERM."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="capsule-k8s-") as tmp:
        # The ConfigMap's port (8080) is replaced, since --network host shares the machine's.
        started = docker(
            "run", "-d", "--network", "host", *HARDENED, *k8s_mounts(tmp), IMAGE,
            "serve", "--transport", "http", "--stateless", "--port", str(port),
        )
        assert started.returncode == 0, started.stderr
        container = started.stdout.strip()
        try:
            wait_ready(base, container)
            probe = urllib.request.Request(f"{base}/readyz", headers={"Host": f"10.1.2.3:{port}"})
            with urllib.request.urlopen(probe, timeout=5) as response:
                assert response.status == 200, response.status
            status, body = post_call(base, "capsule.capsule.svc.cluster.local")
            assert status == 200 and '"words":2' in body, (status, body)
            status, body = post_call(base, "evil.example.com")
            assert status == 421 and "DNS rebinding protection" in body, (status, body)
            stopped = docker("stop", "--time", "30", container)
            assert stopped.returncode == 0, stopped.stderr
            code = docker("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
            assert code == "0", f"exit {code} on SIGTERM:\n{docker('logs', container).stderr}"
            print("  ok: deploy/k8s's args and ConfigMap over HTTP: /readyz 200 for a pod-IP Host, "
                  "tools/call under the Service's name, 421 for another name, exit 0 on SIGTERM")
        finally:
            docker("rm", "-f", container)


async def main() -> int:
    checks = [
        ("image config warm", check_warm_with_image_config),
        ("k8s config warm", check_warm_with_k8s_config),
        ("non-root", check_runs_as_non_root),
        ("stdio", check_stdio),
        ("http", check_http),
        ("http with the k8s config", check_http_k8s),
    ]
    failures = 0
    for name, check in checks:
        try:
            if asyncio.iscoroutinefunction(check):
                await asyncio.wait_for(check(), timeout=180)
            else:
                check()
        except Exception:  # report every failure, then fail the run
            failures += 1
            print(f"  FAILED: {name}", file=sys.stderr)
            traceback.print_exc()
    print("container tests:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
