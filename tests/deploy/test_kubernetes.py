"""deploy/k8s validated offline: every manifest against the Kubernetes API schemas (kubernetes-validate), the
KEDA ScaledObject against KEDA's CRD schema (vendored, Apache-2.0), and the wiring against the code:
commands, Redis address, consumer group and streams, ports, config mount.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from maskwatch.cli import build_parser
from services.dashboard import TLS_CERT_ENV, TLS_KEY_ENV
from services.stack import stack_services
from shared import keys
from shared.config import parse_config
from tests.conftest import REPO

K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"
KEDA_CRD = REPO / "tests" / "schemas" / "keda" / "keda.sh_scaledobjects.yaml"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
NAMESPACE = KUSTOMIZATION["namespace"]
CONFIG = "/config/cameras.yaml"


def _documents() -> list[dict]:
    docs = []
    for name in KUSTOMIZATION["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


DOCS = _documents()


def _one(kind: str, name: str) -> dict:
    [doc] = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(name: str, kind: str = "Deployment") -> dict:
    [container] = _one(kind, name)["spec"]["template"]["spec"]["containers"]
    return container


def _keda_schema() -> dict:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def test_kustomization_lists_every_manifest_and_the_camera_file() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    generated = {f for gen in KUSTOMIZATION["configMapGenerator"] for f in gen["files"]}
    assert set(KUSTOMIZATION["resources"]) | generated == on_disk
    kinds = {(d["kind"], d["metadata"]["name"]) for d in DOCS}
    assert {("StatefulSet", "redis"), ("Deployment", "capture"), ("Deployment", "detector"),
            ("Deployment", "tracker"), ("Deployment", "dashboard"), ("Service", "dashboard"),
            ("Service", "redis"), ("ScaledObject", "detector")} <= kinds


@pytest.mark.parametrize("doc", [d for d in DOCS if d["kind"] != "ScaledObject"],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_kubernetes(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_invalid_manifests_are_rejected() -> None:
    broken = yaml.safe_load(yaml.safe_dump(_one("Deployment", "capture")))
    broken["spec"]["template"]["spec"]["containers"][0]["argz"] = ["capture"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    scaled = yaml.safe_load(yaml.safe_dump(_one("ScaledObject", "detector")))
    del scaled["spec"]["scaleTargetRef"]
    assert list(jsonschema.Draft7Validator(_keda_schema()).iter_errors(scaled))


def test_scaled_object_is_valid_keda_and_scales_the_detectors_on_their_lag() -> None:
    scaled = _one("ScaledObject", "detector")
    errors = [e.message for e in jsonschema.Draft7Validator(_keda_schema()).iter_errors(scaled)]
    assert not errors, errors
    assert scaled["spec"]["scaleTargetRef"]["name"] == _one("Deployment", "detector")["metadata"]["name"]
    cameras = parse_config((K8S / "cameras.yaml").read_text()).enabled_cameras
    triggers = scaled["spec"]["triggers"]
    assert all(t["type"] == "redis-streams" for t in triggers)
    assert {t["metadata"]["stream"] for t in triggers} == {keys.frames_stream(c.id) for c in cameras}
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {keys.DETECTOR_GROUP}
    assert all(int(t["metadata"]["lagCount"]) > 0 for t in triggers)  # lag, not pending entries
    redis_service = _one("Service", "redis")
    assert {t["metadata"]["address"] for t in triggers} == \
        {f"redis.{NAMESPACE}.svc.cluster.local:{redis_service['spec']['ports'][0]['port']}"}


@pytest.mark.parametrize("name", ["capture", "detector", "tracker", "recorder", "dashboard", "mqtt"])
def test_services_run_the_maskwatch_commands_against_the_redis_service(name: str) -> None:
    container = _container(name)
    args = container["args"]
    stack = {spec.name.split("-")[0]: spec.args for spec in stack_services(CONFIG, "0.0.0.0", 8000, mqtt=True)}
    if name in stack:
        assert tuple(args) == stack[name]  # the same command `maskwatch stack up` and compose run
        parsed = build_parser().parse_args(args)
        assert parsed.command == name and callable(parsed.func)
    else:  # the tracker stage (issue 15) lands separately: its documented command
        assert args == ["tracker", "--config", CONFIG]
    env = {e["name"]: e.get("value") for e in container["env"]}
    url = urlsplit(env["MASKWATCH_REDIS_URL"])
    redis_service = _one("Service", "redis")
    assert (url.hostname, url.port) == (redis_service["metadata"]["name"], redis_service["spec"]["ports"][0]["port"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _one("Deployment", name)["spec"]["template"]["spec"]["volumes"]}
    config_dir = str(Path(args[args.index("--config") + 1]).parent)
    assert volumes[mounts[config_dir]]["configMap"]["name"] == KUSTOMIZATION["configMapGenerator"][0]["name"]
    assert container["image"] == KUSTOMIZATION["images"][0]["name"]
    assert _one("Deployment", name)["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("name", ["recorder", "dashboard"])
def test_recorder_and_dashboard_use_postgres_with_the_password_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.history.config import DATABASE_PASSWORD_FILE_ENV, DATABASE_URL_ENV, HistoryConfig
    from shared.history.database import database_url

    container = _container(name)
    env = {e["name"]: e["value"] for e in container["env"]}
    postgres = _one("Service", "postgres")
    url = urlsplit(env[DATABASE_URL_ENV])
    assert (url.scheme, url.hostname, url.port, url.password) == \
        ("postgresql", postgres["metadata"]["name"], postgres["spec"]["ports"][0]["port"], None)
    secret_file = Path(env[DATABASE_PASSWORD_FILE_ENV])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _one("Deployment", name)["spec"]["template"]["spec"]["volumes"]}
    [generator] = KUSTOMIZATION["secretGenerator"]
    assert volumes[mounts[str(secret_file.parent)]]["secret"]["secretName"] == generator["name"]
    key, _, source = generator["files"][0].partition("=")
    assert key == secret_file.name
    monkeypatch.setenv(DATABASE_URL_ENV, env[DATABASE_URL_ENV])
    monkeypatch.setenv(DATABASE_PASSWORD_FILE_ENV, str(K8S / source))  # the code reads the password from the file
    assert database_url(HistoryConfig()).password == (K8S / source).read_text().strip()
    [pg] = _one("StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"]
    pg_env = {e["name"]: e["value"] for e in pg["env"]}
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_DB"]) == (url.username, url.path.lstrip("/"))
    assert Path(pg_env["POSTGRES_PASSWORD_FILE"]).name == key


def test_capture_replicas_and_a_persistent_redis() -> None:
    capture = _one("Deployment", "capture")["spec"]  # replicas share the cameras by lease: any number, rolling
    assert capture["replicas"] >= 2 and capture.get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"
    redis = _one("StatefulSet", "redis")["spec"]
    args = redis["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    data_dir = args[args.index("--dir") + 1]
    [claim] = redis["volumeClaimTemplates"]
    [mount] = redis["template"]["spec"]["containers"][0]["volumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (claim["metadata"]["name"], data_dir)


def test_dashboard_service_and_prometheus_scrape_annotations() -> None:
    container = _container("dashboard")
    port = int(container["args"][container["args"].index("--port") + 1])
    [container_port] = container["ports"]
    assert container_port["containerPort"] == port
    service = _one("Service", "dashboard")
    assert service["spec"]["ports"][0]["targetPort"] == container_port["name"]
    for notes in (_one("Deployment", "dashboard")["spec"]["template"]["metadata"]["annotations"],
                  service["metadata"]["annotations"]):
        assert notes["prometheus.io/scrape"] == "true"
        assert int(notes["prometheus.io/port"]) == port and notes["prometheus.io/path"] == "/metrics"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health"


def test_kustomize_renders_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed; the resource list is checked above")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert {d["kind"] for d in rendered} >= {"ConfigMap", "StatefulSet", "Deployment", "ScaledObject"}
    for doc in rendered:
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == NAMESPACE
        if doc["kind"] != "ScaledObject":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    image = KUSTOMIZATION["images"][0]
    deployments = [d for d in rendered if d["kind"] == "Deployment"]
    assert {c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"]} == \
        {f"{image['newName']}:{image['newTag']}"}


def test_the_mqtt_bridge_is_at_most_one_replica_with_its_password_from_a_secret() -> None:
    bridge = _one("Deployment", "mqtt")["spec"]
    assert bridge["replicas"] <= 1 and bridge["strategy"]["type"] == "Recreate"  # a second would double events
    [password] = [e for e in _container("mqtt")["env"] if e["name"] == "MASKWATCH_MQTT_PASSWORD"]
    assert "value" not in password and password["valueFrom"]["secretKeyRef"]["optional"] is True


def test_the_commented_https_setup_is_valid_and_wired_to_the_dashboards_variables() -> None:
    text = (K8S / "dashboard.yaml").read_text()
    shipped = [d for d in yaml.safe_load_all(text) if d]
    names = {e["name"] for e in _container("dashboard")["env"]}
    assert TLS_CERT_ENV not in names and TLS_KEY_ENV not in names  # off as shipped: plain http
    assert text.count("#tls ") >= 10
    enabled = [d for d in yaml.safe_load_all(text.replace("#tls ", "")) if d]
    assert [d["kind"] for d in enabled] == [d["kind"] for d in shipped] == ["Deployment", "Service"]
    for doc in enabled:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    deployment, service = enabled
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "maskwatch-dashboard-tls" and mount["readOnly"]
    # `kubectl create secret tls` stores the files as tls.crt and tls.key
    assert env[TLS_CERT_ENV] == f"{mount['mountPath']}/tls.crt" and env[TLS_KEY_ENV] == f"{mount['mountPath']}/tls.key"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    for notes in (deployment["spec"]["template"]["metadata"]["annotations"], service["metadata"]["annotations"]):
        assert notes["prometheus.io/scheme"] == "https"
