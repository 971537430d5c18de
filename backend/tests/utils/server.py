"""A real server process for tests that need one (several instances, logs, a browser)."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

MANAGE = Path(sys.executable).parent / "manage"
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    env: dict[str, str] | None = None,
    *,
    workers: int = 1,
    log_path: Path | None = None,
    serve_args: tuple[str, ...] = (),
    own_public_url: bool = False,
) -> Iterator[str]:
    """Run `manage serve` on a free port with `env` over os.environ; yield its base URL.
    With `own_public_url`, PUBLIC_URL (the OIDC issuer) is that base URL."""
    with tempfile.TemporaryDirectory() as scratch:
        log = log_path or Path(scratch) / "server.log"
        with _serving([env or {}], [log], workers, serve_args, START_TIMEOUT_S, own_public_url) as (
            base,
        ):
            yield base


@contextmanager
def running_servers(
    envs: Sequence[dict[str, str]], *, workers: int = 1, log_dir: Path
) -> Iterator[list[str]]:
    """Start one `manage serve` per entry of `envs` at the same moment, as hosts booting
    together would, and yield their base URLs once every one answers /health. Each server's
    output goes to `log_dir`/server-<n>.log."""
    logs = [log_dir / f"server-{index}.log" for index in range(len(envs))]
    with _serving(envs, logs, workers, (), 2 * START_TIMEOUT_S) as bases:
        yield bases


@contextmanager
def _serving(
    envs: Sequence[dict[str, str]],
    log_paths: Sequence[Path],
    workers: int,
    serve_args: tuple[str, ...],
    timeout_s: float,
    own_public_url: bool = False,
) -> Iterator[list[str]]:
    with ExitStack() as sockets:  # hold every port until all are chosen: no duplicates
        ports = []
        for _ in envs:
            sock = sockets.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for env, port, log_path in zip(envs, ports, log_paths, strict=True):
            log = open(log_path, "wb")  # noqa: SIM115
            logs.append(log)
            command = [str(MANAGE), "serve", "--port", str(port), "--workers", str(workers)]
            if own_public_url:
                env = {**env, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
            processes.append(
                subprocess.Popen(
                    [*command, *serve_args],
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        waiting = set(range(len(bases)))
        deadline = time.monotonic() + timeout_s
        while waiting:
            for index in sorted(waiting):
                if processes[index].poll() is not None:
                    log_text = log_paths[index].read_text(errors="replace")
                    raise RuntimeError(
                        f"server {index} exited with {processes[index].returncode}:\n"
                        + log_text[-3000:]
                    )
                try:
                    if httpx.get(f"{bases[index]}/health", timeout=1).status_code == 200:
                        waiting.discard(index)
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"servers {sorted(waiting)} did not start in {timeout_s} s")
            time.sleep(0.1)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
