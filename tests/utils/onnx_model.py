"""A real, tiny ONNX model version for store tests, built without torch in well under a
second: a nearest-class-mean linear classifier (about 80% on MNIST), published in a
model folder with a card, exactly as `digitlab train` lays it out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from digitlab.data import Split
from digitlab.registry import versions as registry


def make_model(model_dir: Path, train: Split, version: str = "20261127-000000-mnist-linear") -> str:
    x = train.images.reshape(-1, 784).astype(np.float32) / 255
    means = np.stack([x[train.labels == d].mean(axis=0) for d in range(10)])  # (10, 784)
    # argmin |x - mu|^2 == argmax x.mu - |mu|^2 / 2; scaled so softmax is not flat.
    weights = (10 * means.T).astype(np.float32)  # (784, 10)
    bias = (-5 * (means**2).sum(axis=1)).astype(np.float32)  # (10,)
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "shape"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = model_dir / version
    folder.mkdir(parents=True)
    onnx.save(model, folder / registry.ONNX_FILE)
    card = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"name": "mnist"},
        "recipe": "linear",
        "metrics": {"kind": "nearest class mean, test fixture"},
        "onnx": {"sha256": registry.file_sha256(folder / registry.ONNX_FILE)},
    }
    (folder / registry.CARD_FILE).write_text(json.dumps(card, indent=2))
    registry.set_current(model_dir, version)
    return version
