"""Deciding with evidence whether a model retrained on people's corrections replaces the
serving one: both are measured on the same sets (the MNIST test set and the held-out
corrections, never trained on) and a policy says whether the candidate is better
where it must be and not worse where it must not be.

`digitlab retrain` (cli/retrain.py) runs the steps; this module holds what they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.data import Split
from digitlab.evaluation.plots import pyplot
from digitlab.evaluation.report import evaluate
from digitlab.registry.versions import ModelVersion

MNIST_TEST = "mnist/test"
HELDOUT = "corrections/heldout"


@dataclass(frozen=True)
class Policy:
    """Promote when the candidate beats the serving model on the held-out corrections by
    more than `min_gain` points and loses at most `max_mnist_drop` points on MNIST test."""

    min_gain: float = 0.0  # percentage points
    max_mnist_drop: float = 0.1  # percentage points


@dataclass(frozen=True)
class Score:
    accuracy: float  # 0..1
    images: int


@dataclass
class Comparison:
    serving: str
    candidate: str
    scores: dict[str, dict[str, Score]] = field(default_factory=dict)  # set -> version -> score

    def points(self, name: str) -> float:
        """Candidate minus serving, in percentage points, on set `name`."""
        found = self.scores[name]
        return 100 * (found[self.candidate].accuracy - found[self.serving].accuracy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "serving": self.serving,
            "candidate": self.candidate,
            "scores": {
                name: {v: {"accuracy": s.accuracy, "images": s.images} for v, s in by.items()}
                for name, by in self.scores.items()
            },
        }


def measure(models: list[ModelVersion], sets: dict[str, Split]) -> dict[str, dict[str, Score]]:
    """Each model's accuracy on each named set."""
    return {
        name: {m.version: Score(evaluate(m, data).accuracy, len(data.labels)) for m in models}
        for name, data in sets.items()
    }


def decide(comparison: Comparison, policy: Policy) -> tuple[bool, list[str]]:
    """Whether to promote, and why, one reason per rule."""
    # Rounded: accuracies are counts over a set, and 99.32 - 99.22 must be 0.10, not
    # 0.1000000000000085 (which would fail a 0.1 limit).
    gain = round(comparison.points(HELDOUT), 6)
    drop = round(-comparison.points(MNIST_TEST), 6)
    held = comparison.scores[HELDOUT][comparison.serving].images
    rules = [
        (
            gain > policy.min_gain,
            f"held-out corrections ({held} images): {gain:+.2f} points "
            f"({'more' if gain > policy.min_gain else 'not more'} than the required "
            f"{policy.min_gain:+.2f})",
        ),
        (
            drop <= policy.max_mnist_drop,
            f"MNIST test: {-drop:+.2f} points (a drop of at most {policy.max_mnist_drop:.2f} "
            f"allowed{'' if drop <= policy.max_mnist_drop else ': exceeded'})",
        ),
    ]
    return all(ok for ok, _ in rules), [text for _, text in rules]


def comparison_png(comparison: Comparison, path: Path) -> None:
    """Side by side bars: each set's accuracy for the serving model and the candidate."""
    plt = pyplot()
    names = list(comparison.scores)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2))
    for ax, name in zip(axes if len(names) > 1 else [axes], names, strict=True):
        versions = [comparison.serving, comparison.candidate]
        values = [100 * comparison.scores[name][v].accuracy for v in versions]
        bars = ax.bar(["serving", "candidate"], values, color=["#888888", "#2a7ab9"])
        ax.bar_label(bars, labels=[f"{v:.2f}%" for v in values], fontsize=8)
        low = max(0.0, min(values) - 10)
        ax.set(title=name, ylabel="accuracy %", ylim=(low, 100))
    fig.suptitle(f"{comparison.serving} vs {comparison.candidate}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
