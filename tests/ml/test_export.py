"""ONNX export: parity with torch, dynamic batch, and the published model folder."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.ml.export import ExportError, check_parity
from digitlab.ml.pipeline import train_and_register
from digitlab.ml.recipes import get_recipe
from digitlab.registry import versions as registry


@pytest.fixture
def dry_model(settings: Settings) -> registry.ModelVersion:
    return train_and_register(get_recipe("fast").replace(dry_run=True), settings)


def test_published_folder_has_model_files_and_a_full_card(
    dry_model: registry.ModelVersion, settings: Settings
) -> None:
    assert sorted(p.name for p in dry_model.path.iterdir()) == [
        "model.json",
        "model.onnx",
        "model.pt",
    ]
    card = json.loads((dry_model.path / "model.json").read_text())
    assert card["version"] == dry_model.version
    assert card["onnx"]["sha256"] == registry.file_sha256(dry_model.onnx_path)
    assert card["config"]["recipe"] == "fast" and card["config"]["dry_run"] is True
    assert card["dataset"]["checksums"]["train-images-idx3-ubyte.gz"].startswith("ba891046")
    assert card["libraries"]["torch"] and card["libraries"]["onnxruntime"]
    assert card["input"]["normalisation"]["inside_model"] is True
    assert 0 <= card["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert card["metrics"]["onnx_test_accuracy"] == card["metrics"]["test_accuracy"]
    assert registry.current_version(settings.model_dir) == dry_model.version
    assert not [p for p in settings.model_dir.iterdir() if p.name.startswith(".staging")]


def test_onnx_has_a_dynamic_batch_and_no_batchnorm(dry_model: registry.ModelVersion) -> None:
    session = ort.InferenceSession(str(dry_model.onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 5, 300):
        out = session.run(None, {"image": np.zeros((batch, 1, 28, 28), np.float32)})[0]
        assert out.shape == (batch, 11)  # ten digits and "none of the ten"
    import onnx

    ops = {node.op_type for node in onnx.load(str(dry_model.onnx_path)).graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops


def test_parity_check_catches_a_model_that_differs(mnist_test: Split) -> None:
    logits = np.random.default_rng(0).normal(size=(1000, 10)).astype(np.float32)
    labels = mnist_test.labels[:1000]
    ok = check_parity(logits, logits + 5e-5, labels)
    assert ok["parity_max_abs_diff"] == pytest.approx(5e-5, rel=1e-2)
    with pytest.raises(ExportError, match="differs from torch by"):
        check_parity(logits, logits + 1e-3, labels)


def test_second_version_becomes_current_unless_told_not_to(
    dry_model: registry.ModelVersion, settings: Settings
) -> None:
    quiet = train_and_register(get_recipe("fast").replace(dry_run=True), settings, activate=False)
    assert registry.current_version(settings.model_dir) == dry_model.version
    assert [v.version for v in registry.list_versions(settings.model_dir)] == [
        dry_model.version,
        quiet.version,
    ]


def test_tampered_onnx_file_is_refused(dry_model: registry.ModelVersion) -> None:
    from digitlab.inference.runtime import OnnxClassifier

    with dry_model.onnx_path.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(registry.RegistryError, match="does not match the model card"):
        OnnxClassifier(dry_model)


def test_failed_export_leaves_no_half_written_version(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digitlab.ml.pipeline as pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise ExportError("simulated exporter failure")

    monkeypatch.setattr(pipeline, "check_parity", broken)
    with pytest.raises(ExportError):
        train_and_register(get_recipe("fast").replace(dry_run=True), settings)
    assert list(settings.model_dir.iterdir()) == []


def test_an_ensemble_exports_as_one_onnx_file(settings: Settings) -> None:
    model = train_and_register(get_recipe("fast").replace(dry_run=True, members=2), settings)
    assert model.card["config"]["members"] == 2
    assert 0 <= model.card["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert {row["member"] for row in model.card["history"]} == {0, 1}
