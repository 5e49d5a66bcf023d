"""The serving model: onnxruntime over the registry's current version, reloaded by itself
when the CURRENT pointer changes (`digitlab.registry.lifecycle.activate_model`), so switching
models needs no restart. No torch on this path.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digitlab.inference.preprocess import model_input
from digitlab.inference.runtime import OnnxClassifier
from digitlab.inference.verdict import split_outputs, verdict_threshold
from digitlab.registry import versions as registry

# One intra-op thread per session: on a small CPU the parallelism comes from concurrent
# requests, and a thread pool per call only adds hand-offs and spinning.
SERVING_THREADS = 1


@dataclass(frozen=True)
class Batch:
    """What one call to the model produced."""

    model: registry.ModelVersion
    probabilities: npt.NDArray[np.float32]  # (N, 10)
    seconds: float
    # (N,) the not-a-digit verdict (digitlab.inference.verdict): True where the picture
    # looks like one handwritten digit.
    is_digit: npt.NDArray[np.bool_]
    # (N,) the digit scores the verdict compared with its threshold (None where not kept).
    scores: npt.NDArray[np.float32] | None = None

    @property
    def labels(self) -> list[int]:
        return [int(k) for k in self.probabilities.argmax(axis=1)]


class Predictor:
    """Loads a model folder once (checking the ONNX file's SHA-256 against its card) and
    predicts single images and batches; a cheap stat of CURRENT per call (at most every
    `check_every` seconds) picks up a new default version."""

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = SERVING_THREADS,
        check_every: float = 0.0,
        threshold: float | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.threshold = threshold  # the verdict_threshold setting; None: the card's
        self.threads = threads
        self.check_every = check_every
        self._lock = threading.Lock()
        self._classifier: OnnxClassifier | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked_at = 0.0

    def _pointer_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = (self.model_dir / registry.CURRENT_FILE).stat()
        except FileNotFoundError:
            return None
        # set_current swaps the file by rename: a new inode even within one mtime tick.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def current(self) -> OnnxClassifier | None:
        """The loaded model while it is still the one CURRENT names (a stat at most
        every `check_every` seconds); None when a load is due."""
        loaded = self._classifier
        if loaded is None:
            return None
        now = time.monotonic()
        if now - self._checked_at < self.check_every:
            return loaded
        if self._pointer_stamp() != self._stamp:
            return None
        self._checked_at = now
        return loaded

    def classifier(self) -> OnnxClassifier:
        """The current model, loading it when the pointer moved; RegistryError if none."""
        loaded = self.current()
        if loaded is not None:
            return loaded
        with self._lock:
            if self._classifier is None or self._pointer_stamp() != self._stamp:
                stamp = self._pointer_stamp()
                model = registry.resolve(self.model_dir)
                # Keep serving the old model until the new one is fully loaded.
                self._classifier = OnnxClassifier(model, threads=self.threads)
                self._stamp = stamp
            self._checked_at = time.monotonic()
            return self._classifier

    @property
    def model(self) -> registry.ModelVersion:
        return self.classifier().model

    def predict(
        self, digits: npt.NDArray[np.uint8], classifier: OnnxClassifier | None = None
    ) -> Batch:
        """(N, 28, 28) uint8 digits (light ink on black) to (N, 10) probabilities, with
        `classifier` if given (from `current()`), else the current model."""
        classifier = classifier or self.classifier()  # one model for the whole batch
        start = time.perf_counter()
        probs, scores = split_outputs(classifier.logits(model_input(digits)))
        is_digit = scores >= verdict_threshold(classifier.model, self.threshold)
        return Batch(classifier.model, probs, time.perf_counter() - start, is_digit, scores)
