"""Evaluate a model version on a test split with onnxruntime and write a report:

digitlab evaluate [VERSION]   # -> var/reports/<version>/{metrics.json, *.png}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from digitlab.data import Split
from digitlab.evaluation import plots
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.versions import ModelVersion


@dataclass(frozen=True)
class Evaluation:
    version: str
    dataset: str
    accuracy: float
    precision: list[float]  # per class
    recall: list[float]  # per class
    confusion: npt.NDArray[np.int64]  # (10, 10): rows true, columns predicted
    predicted: npt.NDArray[np.int64]  # (N,)
    confidence: npt.NDArray[np.float32]  # (N,)

    def metrics(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "dataset": self.dataset,
            "accuracy": self.accuracy,
            "errors": int(self.confusion.sum() - np.trace(self.confusion)),
            "count": int(self.confusion.sum()),
            "per_class": [
                {"label": k, "precision": p, "recall": r, "support": int(self.confusion[k].sum())}
                for k, (p, r) in enumerate(zip(self.precision, self.recall, strict=True))
            ],
            "confusion_matrix": self.confusion.tolist(),
        }


def confusion_matrix(
    true: npt.NDArray[np.integer[Any]], predicted: npt.NDArray[np.integer[Any]], k: int = 10
) -> npt.NDArray[np.int64]:
    return np.bincount(true.astype(np.int64) * k + predicted, minlength=k * k).reshape(k, k)


def evaluate(model: ModelVersion, test: Split) -> Evaluation:
    probs = OnnxClassifier(model).probabilities(test.images)
    predicted = probs.argmax(1)
    cm = confusion_matrix(test.labels, predicted)
    diag = np.diag(cm).astype(np.float64)
    # A class never predicted has no precision to speak of: report 0, not NaN.
    precision = np.divide(diag, cm.sum(0), out=np.zeros(10), where=cm.sum(0) > 0)
    recall = np.divide(diag, cm.sum(1), out=np.zeros(10), where=cm.sum(1) > 0)
    return Evaluation(
        version=model.version,
        dataset=test.dataset,
        accuracy=float(diag.sum() / cm.sum()),
        precision=precision.tolist(),
        recall=recall.tolist(),
        confusion=cm,
        predicted=predicted,
        confidence=probs.max(1),
    )


def write_report(model: ModelVersion, result: Evaluation, test: Split, out_dir: Path) -> Path:
    """metrics.json and three PNGs: confusion matrix, misclassified digits, training curves."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result.metrics(), indent=2) + "\n")
    plots.confusion_png(result.confusion, out_dir / "confusion.png", title=model.version)
    wrong = np.flatnonzero(result.predicted != test.labels)
    plots.misclassified_png(
        test.images[wrong],
        test.labels[wrong],
        result.predicted[wrong],
        result.confidence[wrong],
        out_dir / "misclassified.png",
    )
    plots.curves_png(model.card.get("history", []), out_dir / "curves.png", title=model.version)
    return out_dir
