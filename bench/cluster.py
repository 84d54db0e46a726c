"""Several `canvass serve` instances on one PostgreSQL behind Debian's HAProxy, for tests and `bench.load --instances`.

`Cluster` starts N app processes on free ports (each `python -m server.cli serve`,
i.e. `canvass serve`, with the given environment), writes an HAProxy
configuration that balances them round robin with health checks, and starts
HAProxy in the foreground on its own port. `kill(n)` sends SIGKILL to one
instance; `restart(n)` starts it again on the same port. Everything runs in its
own process group and is stopped by `stop()` (or the context manager).

HAProxy settings that matter for a kill: health checks every 300 ms take a dead
instance out within a second; `retry-on conn-failure empty-response` with
`option redispatch` replays a request that the dying instance never answered on
another instance (every sync route is idempotent: a replayed push returns the
same verdicts); `option forwardfor` passes the caller's address, which uvicorn
trusts from 127.0.0.1 (FORWARDED_ALLOW_IPS); each response says which instance
served it in `X-Canvass-Instance`, and HAProxy gives each request an
`X-Request-ID` the instance logs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def haproxy_available() -> bool:
    """True when Debian's haproxy binary is installed."""
    return Path(HAPROXY).exists()


def haproxy_config(port: int, backends: list[int]) -> str:
    """The balancer's configuration: round robin over the instances, health-checked, retrying unanswered requests."""
    servers = "\n".join(
        f"    server app{n} 127.0.0.1:{p} check" for n, p in enumerate(backends)
    )
    return f"""global
    maxconn 8192

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 10s
    option forwardfor
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response

frontend canvass
    bind 127.0.0.1:{port}
    unique-id-format %[uuid()]
    http-request set-header X-Request-ID %[unique-id] unless {{ req.hdr(x-request-id) -m found }}
    http-request deny deny_status 404 if {{ path /metrics }}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1 maxconn 500
    http-response set-header X-Canvass-Instance %s
{servers}
"""


class Cluster:
    """N app instances and one HAProxy in front; `url` is the balancer's."""

    def __init__(self, instances: int, env: dict[str, str], *, workdir: Path | None = None) -> None:
        self.env = {**os.environ, **env, "FORWARDED_ALLOW_IPS": "127.0.0.1", "PYTHONUNBUFFERED": "1"}  # log lines reach the file as they are written
        self.ports = [free_port() for _ in range(instances)]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="canvass-cluster-"))
        self.apps: list[subprocess.Popen[bytes] | None] = [None] * instances
        self.balancer: subprocess.Popen[bytes] | None = None

    def instance_url(self, n: int) -> str:
        """One instance's own address (for its /metrics)."""
        return f"http://127.0.0.1:{self.ports[n]}"

    def _start_app(self, n: int) -> None:
        log = open(self.workdir / f"app{n}.log", "ab")
        self.apps[n] = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.ports[n])],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start(self, timeout: float = 90) -> Cluster:
        """Start every instance and the balancer; return once each instance answers /health."""
        for n in range(len(self.ports)):
            self._start_app(n)
        config = self.workdir / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.ports))
        self.balancer = subprocess.Popen(
            [HAPROXY, "-f", str(config), "-db"], cwd=self.workdir,
            stdout=open(self.workdir / "haproxy.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        for n in range(len(self.ports)):
            self.wait_ready(n, timeout)
        self._wait(lambda: self._answers(self.url), timeout, "the balancer")
        return self

    def _answers(self, base: str) -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, ready: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not answer within {timeout:.0f}s (logs in {self.workdir})")

    def wait_ready(self, n: int, timeout: float = 90) -> None:
        """Block until instance n answers /health."""
        app = self.apps[n]

        def ready() -> bool:
            if app is not None and app.poll() is not None:
                raise RuntimeError(f"instance {n} exited with {app.returncode} (log: {self.workdir / f'app{n}.log'})")
            return self._answers(self.instance_url(n))

        self._wait(ready, timeout, f"instance {n}")

    def kill(self, n: int) -> None:
        """SIGKILL instance n (no shutdown, no goodbye: its connections simply drop)."""
        app = self.apps[n]
        if app is not None and app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait(timeout=10)

    def restart(self, n: int) -> None:
        """Start instance n again on its port (does not wait; see `wait_ready`)."""
        self.kill(n)
        self._start_app(n)

    def stop(self) -> None:
        """Stop the balancer and every instance."""
        for proc in [self.balancer, *self.apps]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [self.balancer, *self.apps]:
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
