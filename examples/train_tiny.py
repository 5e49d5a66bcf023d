"""Train a tiny model, evaluate it on the MNIST test set and plot its confusion matrix:
a notebook written as a script, one `# %%` cell per step (VS Code, PyCharm and Jupytext
open it as a notebook; `python` runs it top to bottom).

python examples/train_tiny.py [--out DIR] [--epochs N] [--dry-run]

Needs the training extra (`pip install -e '.[train]'`) and the MNIST files
(DIGITLAB_DATA_DIR, downloaded on first use). One epoch of the `fast` recipe takes about
10 s on 2 cores; `--dry-run` trains a single batch, which is enough to see every step run.
"""

# %% Settings: everything goes under --out, never into the repository's var/
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.evaluation.plots import confusion_png
from digitlab.evaluation.report import evaluate
from digitlab.ml.pipeline import train_and_register
from digitlab.ml.recipes import get_recipe

parser = argparse.ArgumentParser(description="Train, evaluate and plot a tiny model.")
parser.add_argument("--out", type=Path, default=Path("var/example"))
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--dry-run", action="store_true", help="train one batch only")
args = parser.parse_args()

settings = get_settings().model_copy(
    update={"model_dir": args.out / "models", "report_dir": args.out / "reports"}
)

# %% Train: the `fast` recipe, shortened; the result is a published model version
recipe = dataclasses.replace(get_recipe("fast"), epochs=args.epochs, dry_run=args.dry_run)
model = train_and_register(recipe, settings)
print(f"trained {model.version} in {model.path}")

# %% Evaluate with onnxruntime, exactly as the service would run it
test = load_split("mnist", "test", settings)
result = evaluate(model, test)
print(f"test accuracy {result.accuracy:.2%} on {len(test.labels):,} images")
for digit, recall in enumerate(result.recall):
    print(f"  {digit}: recall {recall:.2%}")

# %% Plot the confusion matrix: rows the true digit, columns the predicted one
figure = args.out / "confusion.png"
confusion_png(result.confusion, figure, title=f"{model.version}: {result.accuracy:.2%}")
print(f"confusion matrix in {figure}")
