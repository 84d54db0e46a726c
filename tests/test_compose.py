"""compose.yaml (issue 18): docker cannot run on the development machine or in CI, so the file is checked by reading it.

It must parse, build every app role from the project's Dockerfile, give the
balancer, PostgreSQL, Redis, two app instances and a worker, use only settings
the server knows, and point the balancer at a configuration HAProxy accepts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from bench.cluster import HAPROXY, haproxy_available
from server.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    """compose.yaml, parsed (anchors and merge keys resolved)."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_services_and_image(compose: dict) -> None:  # type: ignore[type-arg]
    """PostgreSQL, Redis, two app instances, a worker, a balancer; the apps from the project's Dockerfile."""
    services = compose["services"]
    assert {"postgres", "redis", "app1", "app2", "worker", "balancer", "migrate"} <= set(services)
    for name in ("app1", "app2", "worker", "migrate"):
        assert services[name]["build"] == "."
        assert (ROOT / "Dockerfile").exists()
    for name in ("app1", "app2"):
        assert services[name]["command"][:2] == ["canvass", "serve"]
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["canvass", "worker"]
    assert services["migrate"]["command"] == ["canvass", "db", "upgrade"]
    assert services["balancer"]["ports"] == ["8080:8080"]


def test_app_environment_is_settings_the_server_knows(compose: dict) -> None:  # type: ignore[type-arg]
    """Every CANVASS_* variable is a real setting, the store is the compose Redis, and production settings load."""
    env = dict(compose["services"]["app1"]["environment"])
    known = {"CANVASS_" + field.upper() for field in Settings.__struct_fields__}
    assert {k for k in env if k.startswith("CANVASS_")} <= known
    assert env["CANVASS_STORE_URL"].startswith("redis://redis:")
    env["CANVASS_SECRET_KEY"] = "k" * 48  # compose demands it from the operator (${...:?})
    settings = load_settings(environ={k: str(v) for k, v in env.items()})
    assert settings.is_production and not settings.is_sqlite and settings.store_url == env["CANVASS_STORE_URL"]


def test_balancer_configuration_is_valid_haproxy(compose: dict) -> None:  # type: ignore[type-arg]
    """The mounted haproxy.cfg names both instances and passes `haproxy -c`."""
    mount = next(v for v in compose["services"]["balancer"]["volumes"] if "haproxy.cfg" in v)
    config = ROOT / mount.split(":")[0]
    text = config.read_text()
    assert "server app1 app1:8000" in text and "server app2 app2:8000" in text
    if not haproxy_available():
        pytest.skip("HAProxy is not installed (apt-get install -y haproxy)")
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
