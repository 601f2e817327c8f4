"""Static checks of docker/: no Docker engine runs here, so validate what can be validated."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
# `benchfarm` subcommands the stack may run; each must exist in orchestrator/cli/main.py.
SUBCOMMANDS = {"api", "scheduler", "worker", "agent", "db"}
SERVICES = {"redis", "postgres", "migrate", "api", "scheduler", "coordinator", "exporter", "flower"}
# one-shot services run to completion (the schema migration): no healthcheck, never restarted
ONE_SHOT = {"migrate"}
IMAGES = {"coordinator": DOCKER / "coordinator.Dockerfile", "exporter": DOCKER / "exporter.Dockerfile"}
# ${VAR}, ${VAR:-default}, ${VAR:?error} and bare $VAR; "$$" is an escaped dollar.
_VAR = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (DOCKER / "compose.yaml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


def _documented_vars() -> set[str]:
    names = set()
    for line in (DOCKER / ".env.example").read_text().splitlines():
        m = re.match(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


def test_services_and_healthchecks(compose):
    services = compose["services"]
    assert SERVICES <= set(services)
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no" and "healthcheck" not in svc, name
            continue
        test = svc.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep]
    assert {"pgdata", "artifacts"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for role in ("api", "coordinator", "exporter"):
        assert "artifacts:/data/artifacts" in services[role]["volumes"]
        env = services[role]["environment"]
        assert {"REDIS_URL", "DATABASE_URL", "BENCHFARM_ARTIFACTS", "BENCHFARM_API_TOKENS_FILE"} <= set(env)


def test_every_variable_is_documented(compose_text):
    used = {a or b for a, b in _VAR.findall(compose_text)}
    assert used, "the compose file is expected to be env-driven"
    missing = used - _documented_vars()
    assert not missing, f"variables used in compose.yaml but not in .env.example: {sorted(missing)}"


def test_benchfarm_subcommands_exist(compose):
    commands = [svc["command"] for svc in compose["services"].values() if "command" in svc]
    for dockerfile in IMAGES.values():
        dockerfile_cmd = re.search(r"^CMD\s+(\[.*\])", dockerfile.read_text(), re.M)
        commands.append(json.loads(dockerfile_cmd.group(1)))
    seen = set()
    for cmd in commands:
        argv = shlex.split(cmd) if isinstance(cmd, str) else cmd
        if argv[0] == "benchfarm":
            assert argv[1] in SUBCOMMANDS, f"unknown subcommand in {argv}"
            seen.add(argv[1])
    assert {"api", "scheduler", "worker"} <= seen
    queues = {name: compose["services"][name]["command"] for name in ("coordinator", "exporter")}
    assert {n: c[c.index("--queues") + 1].split(",") for n, c in queues.items()} == {
        "coordinator": ["coordinator"], "exporter": ["export.linux"]}
    assert compose["services"]["migrate"]["command"] == ["benchfarm", "db", "upgrade"]
    for name in ("api", "scheduler", "coordinator", "exporter"):
        assert compose["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_copied_and_mounted_files_exist(compose):
    for path in IMAGES.values():
        dockerfile = path.read_text()
        copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", dockerfile, re.M)
        assert copies
        for src in copies:
            for part in src.split():
                assert (REPO / part).exists(), f"{path.name} copies {part}, which is not in the repository"
        assert (DOCKER / f"{path.name}.dockerignore").is_file(), f"{path.name}: no .dockerignore beside it"
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == REPO and (context / build["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith((".", "/")):
                assert (DOCKER / src).exists(), f"{name} mounts {src}, which does not exist"
    for name, secret in compose.get("secrets", {}).items():
        path = secret["file"]
        # an operator-provided secret comes from a documented variable, never the repository
        assert path.startswith("${") or (DOCKER / path).exists(), name


def test_only_the_exporter_image_installs_torch(compose):
    coordinator, exporter = IMAGES["coordinator"].read_text(), IMAGES["exporter"].read_text()
    installs = {name: re.findall(r"pip install (.+)", text) for name, text in
                (("coordinator", coordinator), ("exporter", exporter))}
    # the coordinator image installs the base package (no ML stack) and refuses to build if torch came in
    assert installs["coordinator"] == ['".[coordinator]" \\'] and "torch" in coordinator.split("pip install")[1]
    assert not any("torch" in line or "exporter" in line or "all]" in line for line in installs["coordinator"])
    # torch from the CPU index, exactly the pinned version, then the exporter extra
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in installs["exporter"]
    assert any(".[exporter]" in line for line in installs["exporter"])
    images = {name: svc.get("build", {}).get("dockerfile") for name, svc in compose["services"].items()}
    assert images["exporter"] == "docker/exporter.Dockerfile"
    assert {images[n] for n in ("api", "scheduler", "coordinator", "migrate")} == {"docker/coordinator.Dockerfile"}


def test_validates_against_compose_spec(compose):
    errors = sorted(_validator().iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_schema_check_is_not_vacuous():
    bad = {"services": {"api": {"image": "x", "healthcheck": {"interval": 5, "tset": ["CMD"]}}}}
    assert list(_validator().iter_errors(bad))


def _validator() -> jsonschema.Draft7Validator:
    # the vendored schema declares draft-07 with a $schema URL jsonschema does not recognise
    schema = json.loads((DOCKER / "schema" / "compose-spec.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_the_base_install_is_torch_free_and_the_test_extra_has_everything():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    ml = ("torch", "executorch", "pymobiledevice3")
    assert not [d for d in project["dependencies"] if d.split("=")[0].split(">")[0].strip() in ml]
    extras = project["optional-dependencies"]
    assert {"torch==2.13.0", "executorch==1.5.1"} <= set(extras["exporter"])
    assert "benchfarm[all]" in extras["test"] and "benchfarm[exporter,ios]" in extras["all"]
