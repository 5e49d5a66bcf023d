"""Closing the loop under a real shift: a population of digits the serving model gets
wrong, corrected by people through the API, then `digitlab retrain`.

    python bench/retrain.py                      # trains a `fast` baseline first
    python bench/retrain.py --model-dir var/models   # start from that folder's current model
    python bench/retrain.py --send 400 --fresh 2000

The population is MNIST training digits turned 30-45 degrees (digitlab.data.rotated).
Digits from train[0:30000] are sent to a running `digitlab serve` on a throwaway
PostgreSQL, and every wrong answer gets a correction through the feedback endpoint, as a
person would give it. `digitlab retrain` then runs as a user runs it. Judged on a fresh
sample of the same population from train[30000:60000] (never sent, never trained on)
and on the MNIST test set, before (the serving model) and after (the one serving at the
end); the service is asked which version it serves, to show it switched by itself.
Needs the MNIST files (DIGITLAB_DATA_DIR).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from digitlab.config import get_settings
from digitlab.data import Split, load_split
from digitlab.data.rotated import sample
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from digitlab.store.testing_pg import PostgresServer, free_port
from harness import SERVICE, fresh_database, start_service

CLI = [sys.executable, "-m", "digitlab"]
# The corrections are a labeller's: only those train a model (docs/learning-loop.md).
LABELLER_TOKEN = "bench-labeller-token"


def digitlab(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *args], env=os.environ | env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"digitlab {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def png_b64(pixels: object) -> str:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")  # type: ignore[arg-type]
    return base64.b64encode(out.getvalue()).decode()


def send_and_correct(url: str, population: Split) -> tuple[int, int]:
    """Each digit through POST /api/v1/predict; each wrong answer corrected. Returns
    (sent, corrected)."""
    corrected = 0
    headers = {"Authorization": f"Bearer {LABELLER_TOKEN}"}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        for image, label in zip(population.images, population.labels, strict=True):
            answer = client.post("/api/v1/predict", json={"image": png_b64(image)})
            answer.raise_for_status()
            found = answer.json()
            if found["prediction"] != int(label):
                feedback = client.post(
                    f"/api/v1/predictions/{found['prediction_id']}/feedback",
                    json={"label": int(label)},
                )
                feedback.raise_for_status()
                corrected += 1
    return len(population.labels), corrected


def accuracy(model: registry.ModelVersion, data: Split) -> float:
    classifier = OnnxClassifier(model)
    return float((classifier.probabilities(data.images).argmax(1) == data.labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="Start from this folder's current model.")
    parser.add_argument("--send", type=int, default=400, help="Digits sent and corrected.")
    parser.add_argument("--fresh", type=int, default=2000, help="Fresh digits to judge by.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extra-weight", help="Passed to digitlab retrain (default: its own).")
    args = parser.parse_args()
    settings = get_settings()
    train = load_split("mnist", "train", settings)
    test = load_split("mnist", "test", settings)
    population = sample(train, 0, 30_000, args.send, seed=args.seed)
    fresh = sample(train, 30_000, 60_000, args.fresh, seed=args.seed + 1)
    work = Path(tempfile.mkdtemp(prefix="digitlab-retrain-"))
    trainer = work / "models"
    with PostgresServer.start() as pg:
        url = fresh_database(pg, "retrain_bench")
        env = {"DIGITLAB_DATABASE_URL": url, "DIGITLAB_MODEL_DIR": str(trainer)}
        if args.model_dir:
            source = registry.resolve(args.model_dir)
            shutil.copytree(source.path, trainer / source.version)
            digitlab("models", "use", source.version, env=env)
        else:
            digitlab("train", "--recipe", "fast", env=env)
        before = registry.resolve(trainer)
        os.environ["DIGITLAB_MODEL_DIR"] = str(work / "serving-cache")
        os.environ["DIGITLAB_LABELLER_TOKEN"] = LABELLER_TOKEN
        port = free_port()
        service = start_service(SERVICE, url, port, work / "serve.log")
        try:
            sent, corrected = send_and_correct(f"http://127.0.0.1:{port}", population)
            started = time.perf_counter()
            weight = ["--extra-weight", args.extra_weight] if args.extra_weight else []
            output = digitlab("retrain", "--out", str(work / "retrain"), *weight, env=env)
            seconds = time.perf_counter() - started
            report = json.loads((work / "retrain" / "report.json").read_text())
            time.sleep(1.0)  # a promotion reaches the service by itself within that
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                served = client.get("/api/v1/models/current").json()["version"]
        finally:
            service.terminate()
            service.wait(timeout=30)
    after = registry.load_version(trainer, report["candidate"])
    held = report["scores"]["corrections/heldout"]
    print(output)
    print(
        f"population: MNIST train digits turned 30-45 degrees; sent {sent}, "
        f"{corrected} answered wrong and corrected; retrain took {seconds:.1f} s "
        f"on {os.cpu_count()} cores; promoted: {report['promoted']}; "
        f"the running service now serves {served}"
    )
    print(f"| set | images | before ({before.version}) | after ({after.version}) |")
    print("|---|---:|---:|---:|")
    rows = [
        ("fresh rotated sample (train[30000:60000])", fresh, len(fresh.labels)),
        ("MNIST test", test, len(test.labels)),
    ]
    for name, data, n in rows:
        print(f"| {name} | {n} | {accuracy(before, data):.2%} | {accuracy(after, data):.2%} |")
    print(
        f"| held-out corrections | {held[before.version]['images']} | "
        f"{held[before.version]['accuracy']:.2%} | {held[after.version]['accuracy']:.2%} |"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
