"""The shipped Prometheus, Alertmanager and Grafana files, checked by the real tools (Debian's promtool, amtool)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA = REPO / "deploy" / "grafana"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus prometheus-alertmanager; .ci/run does)")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_promtool_accepts_the_scrape_config_and_its_rules() -> None:
    out = _run(_tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 rule files found" in out.stdout + out.stderr


def test_promtool_accepts_the_rules() -> None:
    out = _run(_tool("promtool"), "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_rule_has_unit_tests_and_they_pass() -> None:
    rules = [r["alert"] for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
             for r in g["rules"] if "alert" in r]
    tests = yaml.safe_load((PROMETHEUS / "tests" / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert rules and set(rules) <= tested, f"alerts without a firing test: {set(rules) - tested}"
    out = _run(_tool("promtool"), "test", "rules", str(PROMETHEUS / "tests" / "alerts_test.yml"))
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path) -> None:
    text = (PROMETHEUS / "tests" / "alerts_test.yml").read_text().replace("severity: critical", "severity: page")
    broken = tmp_path / "alerts_test.yml"
    broken.write_text(text.replace("../alerts.yml", str(PROMETHEUS / "alerts.yml")))
    out = _run(_tool("promtool"), "test", "rules", str(broken))
    assert out.returncode != 0 and "MaskwatchRedisUnreachable" in out.stdout + out.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    out = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in compose["grafana"]["volumes"])}
    assert compose["grafana"]["profiles"] == compose["prometheus"]["profiles"] == ["monitoring"]
    source = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [datasource] = source["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "maskwatch.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert (REPO / mounts[folder]).resolve() == (GRAFANA / "dashboards").resolve()
    assert (REPO / mounts["/etc/grafana/provisioning"]).resolve() == (GRAFANA / "provisioning").resolve()
    dashboard = json.loads((GRAFANA / "dashboards" / "maskwatch.json").read_text())
    assert dashboard["uid"] == "maskwatch" and len(dashboard["panels"]) >= 8
    assert all(t["expr"] for p in dashboard["panels"] for t in p["targets"])
