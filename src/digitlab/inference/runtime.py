"""onnxruntime inference over a model version: no torch on this path."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from digitlab.inference.verdict import softmax as softmax  # where it lived before
from digitlab.inference.verdict import split_outputs
from digitlab.registry.versions import ModelVersion, verify_onnx


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class OnnxClassifier:
    """Loads a model version once (checking the file against its card) and scores
    (N, 28, 28) uint8 images or (N, 1, 28, 28) float32 inputs in [0, 1]."""

    def __init__(self, model: ModelVersion, threads: int | None = None) -> None:
        verify_onnx(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.model = model
        self.session = ort.InferenceSession(
            str(model.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, x: npt.NDArray[np.float32], batch: int = 1024) -> npt.NDArray[np.float32]:
        outs = [
            self.session.run(None, {self.input_name: x[i : i + batch]})[0]
            for i in range(0, len(x), batch)
        ]
        logits: npt.NDArray[np.float32] = np.concatenate(outs).astype(np.float32)
        return logits

    def probabilities(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(N, 10) digit probabilities for (N, 28, 28) uint8 images (a model with an 11th
        output, "none of the ten", has it left out: `verdict.split_outputs`)."""

        x = images.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255)
        return split_outputs(self.logits(x))[0]
