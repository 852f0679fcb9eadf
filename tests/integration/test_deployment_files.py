"""docker-compose.yml, Dockerfile, .dockerignore and .env.example, checked without Docker.

Docker does not run where the tests run, so the files are read as data: every command of
the project's image must reach a real entry point with arguments it accepts, every
variable must be a real setting (or belong to a third-party image), and every setting
must be documented in .env.example.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from gunicorn.config import Config
from gunicorn.util import import_app

from simulator.cli import main
from worker.domain.names import NOTIFY_QUEUE, QUEUES
from worker.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"

DATABASE_URL = "postgresql+psycopg://dialer:dialer@postgres:5432/dialer"
REDIS_URL = "redis://redis:6379/0"

# Variables that belong to third-party images, not to the dialer.
NOT_SETTINGS = frozenset({
    "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB",  # postgres
    "CELERY_BROKER_URL", "FLOWER_PORT",  # mher/flower
    "PROMETHEUS_MULTIPROC_DIR",  # prometheus-client, for a webhook with several processes
})
# Settings whose value in .env.example depends on the mode (simulator or real Twilio) or
# on where the process runs; every other setting there must show its real default.
MODE_SETTINGS = frozenset({
    "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL", "DIALER_PUBLIC_URL",
    "DIALER_DEFAULT_FROM", "DIALER_DATABASE_URL", "DIALER_REDIS_URL",
})
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


# --- reading the files ------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def ours() -> dict[str, dict[str, Any]]:
    """The services that run the project's own image (built from the Dockerfile)."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def argv(command: str | list[str]) -> list[str]:
    """A compose command as the container receives it ($$ is compose's escaped $)."""
    if isinstance(command, str):
        command = shlex.split(command)
    return [part.replace("$$", "$") for part in command]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def published(svc: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from the short "[ip:]host:container" syntax."""
    ports = {}
    for spec in svc.get("ports", []):
        *_, host, container = str(spec).split(":")
        ports[int(container)] = int(host)
    return ports


def env_example() -> list[tuple[str, str, bool]]:
    """(name, value, active) for every KEY=value line, commented or not."""
    rows = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            rows.append((match[1], match[2].strip(), not line.lstrip().startswith("#")))
    return rows


def env_example_active() -> dict[str, str]:
    return {name: value for name, value, active in env_example() if active}


class _Recorder(dict[str, str]):
    """An empty environment that remembers every name Settings.from_env asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.names.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.names.add(key)
        return super().__getitem__(key)


@cache
def setting_names() -> frozenset[str]:
    """Every variable worker/settings.py reads: as from_env asks, and as its source names."""
    recorder = _Recorder()
    Settings.from_env(recorder)
    source = (REPO / "worker" / "settings.py").read_text()
    named = set(re.findall(r"\"((?:TWILIO|DIALER)_[A-Z0-9_]+)\"", source))
    return frozenset(recorder.names | named)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


# --- services, profiles, scaling --------------------------------------------------------


def test_the_stack_has_every_service_with_its_profile():
    assert set(services()) == {"redis", "postgres", "migrate", "worker", "notifier", "beat",
                               "webhook", "api", "simulator", "flower"}
    profiles = {name: svc.get("profiles") for name, svc in services().items()}
    assert profiles.pop("simulator") == ["dev"]
    assert profiles.pop("flower") == ["monitoring"]
    assert all(p is None for p in profiles.values()), profiles
    assert services()["redis"]["image"].startswith("redis:7")
    assert services()["postgres"]["image"].startswith("postgres:15")
    assert services()["flower"]["image"].startswith("mher/flower")
    assert set(ours()) == {"migrate", "worker", "notifier", "beat", "webhook", "api",
                           "simulator"}


def test_our_services_share_one_image_the_env_file_and_the_stack_addresses():
    for name, svc in ours().items():
        assert svc["build"] in (".", {"context": "."}), name
        assert svc["image"] == "dialer:local", name
        env_files = svc["env_file"] if isinstance(svc["env_file"], list) else [svc["env_file"]]
        assert ".env" in env_files, name
        env = environment(svc)
        assert env["DIALER_DATABASE_URL"] == DATABASE_URL, name
        assert env["DIALER_REDIS_URL"] == REDIS_URL, name
    postgres = environment(services()["postgres"])
    url = urlsplit(DATABASE_URL)
    assert (url.username, url.password, url.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], "/" + postgres["POSTGRES_DB"])


def test_the_worker_scales_and_beat_does_not():
    worker, beat = services()["worker"], services()["beat"]
    # --scale worker=N: no fixed name and no host port that two copies would fight over.
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert worker.get("deploy", {}).get("replicas") is None
    assert "container_name" not in beat
    assert beat["deploy"]["replicas"] == 1
    assert not beat.get("ports")


def test_the_migration_runs_once_and_gates_the_workers():
    migrate, worker = services()["migrate"], services()["worker"]
    assert argv(migrate["command"]) == ["dialer", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_dependencies_exist_are_healthy_and_never_need_an_optional_profile():
    for name, svc in services().items():
        depends = svc.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dep, spec in depends.items():
            assert dep in services(), f"{name} depends on unknown {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services()[dep], f"{name} waits for {dep}'s health"
            if not svc.get("profiles"):
                assert not services()[dep].get("profiles"), f"{name} needs profile of {dep}"


def test_health_checks():
    checks = {name: svc["healthcheck"]["test"] for name, svc in services().items()
              if "healthcheck" in svc}
    assert {"redis", "postgres", "worker", "notifier", "webhook", "api",
            "simulator"} <= set(checks)
    assert "pg_isready" in checks["postgres"]
    assert "redis-cli" in checks["redis"]
    # The worker pings itself by the node name Celery gives it by default.
    assert checks["worker"][0] == "CMD-SHELL"
    ping = argv(shlex.split(checks["worker"][1]))
    assert ping[:5] == ["celery", "-A", "worker", "inspect", "ping"]
    assert ping[ping.index("-d") + 1] == "celery@$HOSTNAME"
    assert not {"-n", "--hostname"} & set(argv(services()["worker"]["command"]))
    # The webhook is probed on the port gunicorn binds, at the route that exists.
    assert checks["webhook"][:3] == ["CMD", "python", "-c"]
    assert "http://127.0.0.1:5000/healthz" in checks["webhook"][3]
    # The API is probed at the one route that needs no key.
    assert checks["api"][:3] == ["CMD", "python", "-c"]
    assert "http://127.0.0.1:8000/v1/openapi.json" in checks["api"][3]


# --- every command reaches a real entry point -------------------------------------------


# Run in a child process: the worker's Celery app reads the broker URL once, at import,
# and the integration tests need it to be theirs (tests/support/stack_fixtures.py).
CELERY_CHECK = """
import json, sys
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery

args = json.loads(sys.argv[1])
ctx = celery.make_context("celery", args[:2])
app = find_app(ctx.params["app"])  # what `celery -A worker` loads
ctx.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
sub = celery.get_command(ctx, args[2])
params = sub.make_context(args[2], args[3:], parent=ctx).params if sub else {}
print(json.dumps({
    "app": f"{type(app).__module__}.{type(app).__name__}",
    "is_worker_app": app is sys.modules["worker.celery_app"].app,
    "command": sub is not None,
    "queues": params.get("queues"),
    "hostname": params.get("hostname"),
    "task_queues": sorted(q.name for q in app.conf.task_queues),
}))
"""


def _celery(args: list[str], tmp_path: Path) -> None:
    assert args[:2] == ["-A", "worker"], args
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIALER_", "TWILIO_"))}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", CELERY_CHECK, json.dumps(args)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["app"] == "celery.app.base.Celery"
    assert found["is_worker_app"]
    assert found["command"], f"celery has no {args[2]!r} command"
    if args[2] == "worker":
        assert set(found["queues"]) <= set(found["task_queues"]), found["queues"]
        assert found["hostname"] == f"celery@{socket.gethostname()}"


def test_every_queue_has_its_worker_and_notifications_have_their_own():
    consumed = {name: argv(svc["command"])[argv(svc["command"]).index("-Q") + 1].split(",")
                for name, svc in ours().items() if argv(svc["command"])[:4] == [
                    "celery", "-A", "worker", "worker"]}
    assert sorted(q for queues in consumed.values() for q in queues) == sorted(QUEUES)
    # A slow receiver holds only the notifier's processes, never dialing's.
    assert consumed["notifier"] == [NOTIFY_QUEUE]


def _dialer(args: list[str]) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["dialer"].partition(":")
    command: click.Command = getattr(importlib.import_module(module), attr)
    ctx: click.Context | None = None
    path: list[str] = []
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        ctx = click.Context(command, info_name=path[-1] if path else "dialer", parent=ctx)
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"dialer {' '.join(path)} has no {args[0]!r} command"
        path.append(args.pop(0))
        command = sub
    assert not isinstance(command, click.Group), f"dialer {' '.join(path)} needs a command"
    command.make_context(path[-1], list(args), parent=ctx)
    result = CliRunner().invoke(getattr(importlib.import_module(module), attr), [*path, "--help"])
    assert result.exit_code == 0, result.output


# What each gunicorn target must route: (method, path) -> endpoint, or None for any.
GUNICORN_APPS = {
    "webhook:create_app()": {("GET", "/healthz"): "twilio.healthz",
                             ("POST", "/twilio/status"): None},
    "api:create_app()": {("GET", "/v1/openapi.json"): "openapi",
                         ("POST", "/v1/calls"): None, ("GET", "/v1/calls/x"): None},
}


def _gunicorn(args: list[str], svc: dict[str, Any]) -> None:
    parsed = Config().parser().parse_args(args)
    [target] = parsed.args
    assert target in GUNICORN_APPS, target
    app = import_app(target)  # what gunicorn loads: create_app() called
    assert isinstance(app, Flask)
    [bind] = parsed.bind
    port = int(bind.rsplit(":", 1)[1])
    assert bind.startswith("0.0.0.0:")
    assert port in published(svc)
    if target == "webhook:create_app()":
        # More than one process would each count their own metrics, unless they share a dir.
        assert parsed.workers == 1 or "PROMETHEUS_MULTIPROC_DIR" in environment(svc)
    adapter = app.url_map.bind("localhost")
    for (method, path), endpoint in GUNICORN_APPS[target].items():
        found = adapter.match(path, method=method)[0]
        assert endpoint is None or found == endpoint, (method, path, found)


def _python(args: list[str], svc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    if args[0] == "-c":
        compile(args[1], "<healthcheck>", "exec")
        return
    assert args[:2] == ["-m", "simulator"], args
    assert importlib.util.find_spec("simulator.__main__") is not None

    # The simulator takes the dialer's credentials from the same .env.
    for name, value in env_example_active().items():
        monkeypatch.setenv(name, value)
    params = main.make_context("simulator", args[2:]).params
    assert params["host"] == "0.0.0.0"
    assert params["port"] in published(svc)
    assert params["account_sid"] == env_example_active()["TWILIO_ACCOUNT_SID"]
    assert params["auth_token"] == env_example_active()["TWILIO_AUTH_TOKEN"]
    assert env_example_active()["TWILIO_API_BASE_URL"] == f"http://simulator:{params['port']}"
    # Restarted by compose, a seeded simulator would hand out call SIDs already stored.
    assert params["seed"] is None
    result = CliRunner().invoke(main, ["--help"], prog_name="python -m simulator")
    assert result.exit_code == 0, result.output


def _commands() -> list[tuple[str, str, list[str]]]:
    """(service, "command" or "healthcheck", argv) for every process our image runs."""
    found = []
    for name, svc in ours().items():
        found.append((name, "command", argv(svc["command"])))
        test = svc.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD":
            found.append((name, "healthcheck", argv(test[1:])))
        elif test and test[0] == "CMD-SHELL":  # run by /bin/sh, which expands $HOSTNAME
            found.append((name, "healthcheck", [a.replace("$HOSTNAME", socket.gethostname())
                                                for a in argv(test[1])]))
    return found


@pytest.mark.parametrize(("service", "role", "args"), _commands(),
                         ids=[f"{name}-{role}" for name, role, _ in _commands()])
def test_every_command_of_our_image_reaches_a_real_entry_point(service, role, args,
                                                                monkeypatch, tmp_path):
    svc = services()[service]
    program, rest = args[0], list(args[1:])
    if program == "celery":
        _celery(rest, tmp_path)
    elif program == "dialer":
        _dialer(rest)
    elif program == "gunicorn":
        _gunicorn(rest, svc)
    elif program == "python":
        _python(rest, svc, monkeypatch)
    else:
        pytest.fail(f"{service} {role}: unknown program {program!r}")


def test_flower_watches_the_dialers_broker():
    flower = environment(services()["flower"])
    assert flower["CELERY_BROKER_URL"] == REDIS_URL
    assert published(services()["flower"]) == {int(flower["FLOWER_PORT"]): 5555}
    # Unauthenticated consoles are published on the loopback only.
    for name in ("flower", "simulator"):
        assert all(str(p).startswith("127.0.0.1:") for p in services()[name]["ports"]), name


# --- variables --------------------------------------------------------------------------


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [str(key), *_strings(value)]]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_every_variable_compose_uses_is_a_setting_or_a_third_party_one():
    used = set()
    for svc in services().values():
        used |= set(environment(svc))
    # ${VAR} and $VAR interpolation in any value; $$ is a dollar left to the container.
    for text in _strings(compose()):
        used |= set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text.replace("$$", "")))
    unknown = used - setting_names() - NOT_SETTINGS
    assert not unknown, f"not settings of worker/settings.py: {sorted(unknown)}"
    assert setting_names() >= {"DIALER_DATABASE_URL", "DIALER_REDIS_URL"}


def test_env_example_documents_exactly_the_settings():
    names = {name for name, _, _ in env_example()}
    assert not names - setting_names(), f"not settings: {sorted(names - setting_names())}"
    missing = setting_names() - names
    assert not missing, f".env.example does not document {sorted(missing)}"
    assert len(env_example_active()) == len([r for r in env_example() if r[2]]), "a duplicate"


def test_env_example_shows_the_real_defaults():
    default = Settings.from_env({})
    for name, value, _ in env_example():
        if name not in MODE_SETTINGS:
            assert Settings.from_env({name: value}) == default, f"{name}={value}"
    assert setting_names() - MODE_SETTINGS, "nothing left to compare"


def test_env_example_as_shipped_runs_the_dev_stack_against_the_simulator():
    env = env_example_active() | environment(services()["worker"])
    settings = Settings.from_env(env)
    sid, _ = settings.require_twilio()
    assert re.fullmatch(r"AC.{32}", sid), "the simulator accepts only AC + 32 characters"
    assert urlsplit(settings.twilio_api_base_url).hostname == "simulator"
    public = urlsplit(settings.public_url)
    assert (public.hostname, public.port) == ("webhook", 5000)
    assert 5000 in published(services()["webhook"])
    assert settings.default_from
    assert settings.database_url == DATABASE_URL and settings.redis_url == REDIS_URL


# --- the image --------------------------------------------------------------------------


def test_dockerfile_base_user_and_no_secrets():
    steps = dockerfile()
    assert [args for kind, args in steps if kind == "FROM"] == ["python:3.11-slim"]
    users = [args.split(":")[0] for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    envs = " ".join(args for kind, args in steps if kind == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", envs)
    assert not any(kind == "HEALTHCHECK" for kind, _ in steps)  # per service, in compose
    for kind, args in steps:
        if kind in ("ENV", "ARG", "COPY", "ADD"):
            assert not re.search(r"TWILIO_|DIALER_|\.env\b", args), f"{kind} {args}"


def test_dockerfile_installs_dependencies_before_copying_the_source():
    steps = dockerfile()
    copies = [(i, args.split()) for i, (kind, args) in enumerate(steps) if kind == "COPY"]
    first_copy = copies[0][0]
    assert copies[0][1][0] == "pyproject.toml"
    deps = next(i for i, (kind, args) in enumerate(steps)
                if kind == "RUN" and "pip install -r" in args)
    source = [i for i, parts in copies if parts[0] != "pyproject.toml"]
    assert first_copy < deps < min(source)
    # Everything setuptools needs to build the project is copied.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = {parts[0].rstrip("/") for _, parts in copies}
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {project["project"]["readme"]} <= copied
    assert any(kind == "RUN" and "pip install --no-deps" in args for kind, args in steps[deps:])


def test_dockerfile_requirements_are_pyprojects_dependencies():
    run = next(args for kind, args in dockerfile() if kind == "RUN" and "tomllib" in args)
    words = shlex.split(run)
    code = words[words.index("-c") + 1]
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    expected = project["build-system"]["requires"] + project["project"]["dependencies"]
    assert out.splitlines() == expected


def test_dockerignore_keeps_secrets_out_and_the_build_inputs_in():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)

    def ignored(path: str) -> bool:
        return any(fnmatch(path, p) or fnmatch(path, p.removeprefix("**/")) for p in patterns)

    for path in (".env", ".env.local", ".venv", ".git", "dialer.db"):
        assert ignored(path), path
    for path in ("pyproject.toml", "README.md", "worker", "webhook", "simulator"):
        assert not ignored(path), path


def test_every_worker_serves_its_metrics_on_a_port_the_stack_can_reach():
    worker = services()["worker"]
    port = Settings.from_env(environment(worker)).metrics_port
    assert port, "the worker's metrics are off in the compose stack"
    assert str(port) in [str(p) for p in worker.get("expose", [])]
    assert port not in published(worker), "scaled copies cannot share a host port"
