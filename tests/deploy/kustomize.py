"""Render the Kubernetes manifests in deploy/k8s with kustomize, for tests that have no
cluster: `kubectl kustomize DIR`, or `kustomize build DIR` where kubectl is missing."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
INSTALL = "install kubectl (it has kustomize built in) or kustomize"


def renderer() -> list[str] | None:
    """The command that renders a kustomization folder, or None when neither is on PATH."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def require_renderer() -> list[str]:
    """The renderer; without one, skip, or fail where DIGITLAB_REQUIRE_KUSTOMIZE=1 (CI)."""
    command = renderer()
    if command is None:
        message = f"neither kubectl nor kustomize is on PATH: {INSTALL}"
        if os.environ.get("DIGITLAB_REQUIRE_KUSTOMIZE") == "1":
            pytest.fail(message + " (DIGITLAB_REQUIRE_KUSTOMIZE=1)")
        pytest.skip(message)
    return command


@functools.cache
def _render(command: tuple[str, ...], folder: str) -> tuple[str, ...]:
    done = subprocess.run([*command, str(K8S / folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return tuple(yaml.dump(doc) for doc in yaml.safe_load_all(done.stdout) if doc)


def render(folder: str) -> list[dict[str, Any]]:
    """Every object `folder` (base, overlays/dev, overlays/prod) renders to, fresh copies."""
    return [yaml.safe_load(text) for text in _render(tuple(require_renderer()), folder)]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{len(matches)} {kind} named {name}"
    return matches[0]


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod spec of every workload, by `Kind/name`."""
    kinds = {"Deployment", "StatefulSet", "Job", "DaemonSet"}
    specs = {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in kinds
    }
    for o in objects:  # a CronJob's pods are one level deeper
        if o["kind"] == "CronJob":
            specs[f"CronJob/{o['metadata']['name']}"] = o["spec"]["jobTemplate"]["spec"][
                "template"
            ]["spec"]
    return specs


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}
