"""Whom the deployments trust, read from the manifests (no cluster, no Docker): each names
exactly its proxy in DIGITLAB_FORWARDED_ALLOW_IPS, never `*`; Kubernetes keeps /metrics
off the Ingress and lets only the ingress controller reach the API, and the API only
PostgreSQL and DNS."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.deploy.compose_file import load_compose
from tests.deploy.kustomize import env_of, find, render

FOLDERS = ["base", "overlays/dev", "overlays/prod"]


def test_compose_trusts_the_proxys_fixed_address_only() -> None:
    compose = load_compose({"POSTGRES_PASSWORD": "x"})
    services = compose["services"]
    proxy = services["proxy"]["networks"]["default"]["ipv4_address"]
    assert services["api"]["environment"]["DIGITLAB_FORWARDED_ALLOW_IPS"] == proxy
    (pool,) = compose["networks"]["default"]["ipam"]["config"]
    address = ipaddress.ip_address(proxy)
    assert address in ipaddress.ip_network(pool["subnet"])
    # Docker hands the other containers addresses from ip_range: never the proxy's.
    assert address not in ipaddress.ip_network(pool["ip_range"])


@pytest.fixture(params=FOLDERS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def test_the_api_trusts_a_network_not_everyone(objects: list[dict[str, Any]]) -> None:
    pod = find(objects, "Deployment", "digitlab-api")["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    trusted = env_of(api)["DIGITLAB_FORWARDED_ALLOW_IPS"]["value"]
    assert trusted != "*"
    assert all(ipaddress.ip_network(part.strip()) for part in trusted.split(","))


def test_metrics_are_refused_at_the_ingress(objects: list[dict[str, Any]]) -> None:
    public = find(objects, "Ingress", "digitlab-api")
    metrics = find(objects, "Ingress", "digitlab-api-metrics")
    (rule,) = metrics["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/metrics", "Exact")
    allowed = metrics["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/whitelist-source-range"
    ]
    assert allowed == "127.0.0.1/32"
    # The same host (and TLS) as the public Ingress, or the refusal would not apply there.
    assert rule.get("host") == public["spec"]["rules"][0].get("host")
    assert metrics["spec"].get("tls") == public["spec"].get("tls")


def test_only_the_ingress_controller_reaches_the_api(objects: list[dict[str, Any]]) -> None:
    policy = find(objects, "NetworkPolicy", "digitlab-api")["spec"]
    labels = find(objects, "Deployment", "digitlab-api")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ingress-nginx"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    ports = {(p["protocol"], p["port"]) for r in policy["egress"] for p in r["ports"]}
    assert ports == {("TCP", 5432), ("UDP", 53), ("TCP", 53)}


def test_the_dev_database_takes_only_digitlabs_pods() -> None:
    objects = render("overlays/dev")
    policy = find(objects, "NetworkPolicy", "digitlab-db")["spec"]
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    (expression,) = source["podSelector"]["matchExpressions"]
    assert "api" in expression["values"] and "database" not in expression["values"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
