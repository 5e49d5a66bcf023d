"""`digitlab feedback export` on both backends: the files hold the stored images bit for
bit with their latest corrections, the filters choose the right inputs, the split
follows the image content, the same state exports byte-identical files, a failed export
leaves no folder, and the command's errors are one line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.data.corrections import MANIFEST, PARTS, load_part, part_of, read_manifest
from digitlab.feedback import export as feedback_export
from digitlab.feedback.export import ExportError, export
from digitlab.store import crud, db
from digitlab.store.models import Feedback, InputData, Prediction

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CORRECTED = 24  # inputs corrected once each, feedback k at T0 + k hours
runner = CliRunner()


@dataclass
class Stored:
    """What the database holds, as the export should see it."""

    images: dict[int, bytes] = field(default_factory=dict)  # input id -> 784 bytes
    # input id -> (latest feedback id, label, version corrected, its predicted label)
    expected: dict[int, tuple[int, int, str, int]] = field(default_factory=dict)
    labelled: dict[int, int] = field(default_factory=dict)  # labelled, no feedback
    superseded: int = 0  # a feedback id a newer correction replaced


def probs_for(label: int) -> np.ndarray:
    p = np.full(10, 0.01, dtype=np.float32)
    p[label] = 0.91
    return p


def at(session: Session, feedback_id: int, hours: int) -> None:
    when = T0 + timedelta(hours=hours)
    session.execute(update(Feedback).where(Feedback.id == feedback_id).values(created_at=when))


def build(engine: Engine, split: Split) -> Stored:
    stored = Stored()
    with db.transaction(engine) as s:
        models = {
            v: crud.register_model(
                s, version=v, dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
            )
            for v in ("v1", "v2")
        }

        def predicted(k: int, version: str, guess: int, label: int | None = None) -> int:
            """An input of test image k with a prediction `guess` by `version`."""
            image = split.images[k]
            input_id = crud.record_input(s, image=image, source=f"test/{k}", label=label)
            stored.images[input_id] = image.tobytes()
            return crud.record_prediction(
                s, input_id=input_id, model_id=models[version], probabilities=probs_for(guess),
                latency_ms=1.0,
            )  # fmt: skip

        def corrected(pred: int, version: str, guess: int, label: int, hours: int) -> int:
            fb = crud.record_feedback(s, prediction_id=pred, label=label, source="labeller")
            at(s, fb, hours)
            input_id = s.get_one(Prediction, pred).input_id
            stored.expected[input_id] = (fb, label, version, guess)
            return fb

        for k in range(CORRECTED):
            version = "v1" if k % 3 else "v2"
            true = int(split.labels[k])
            corrected(predicted(k, version, (true + 1) % 10), version, (true + 1) % 10, true, k)
        # Corrected twice: the second correction counts, and its time.
        pred = predicted(30, "v1", 2)
        stored.superseded = corrected(pred, "v1", 2, 3, 1)
        corrected(pred, "v1", 2, 5, 30)
        # Two predictions of one input, each corrected: the newer feedback (v2's) counts.
        first = predicted(31, "v1", 4)
        input_b = max(stored.images)
        corrected(first, "v1", 4, 6, 31)
        second = crud.record_prediction(
            s, input_id=input_b, model_id=models["v2"], probabilities=probs_for(8),
            latency_ms=1.0,
        )  # fmt: skip
        corrected(second, "v2", 8, 9, 32)
        # The same image as test image 0 sent again, and corrected: same part as it.
        corrected(predicted(0, "v1", 1), "v1", 1, int(split.labels[0]), 33)
        # Came with a label and was corrected anyway: once, as a correction.
        corrected(predicted(34, "v2", 0, label=int(split.labels[34])), "v2", 0, 1, 34)
        # Labelled, never corrected: only with --with-labelled (input time T0 + 40 h).
        predicted(32, "v1", int(split.labels[32]), label=int(split.labels[32]))
        labelled_id = max(stored.images)
        stored.labelled[labelled_id] = int(split.labels[32])
        s.execute(
            update(InputData)
            .where(InputData.id == labelled_id)
            .values(created_at=T0 + timedelta(hours=40))
        )
        # Neither labelled nor corrected: never exported.
        predicted(33, "v1", 7)
    return stored


@pytest.fixture
def stored(engine: Engine, mnist_test: Split) -> Stored:
    return build(engine, mnist_test)


def sha256s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def check_files(folder: Path, items: list[dict[str, Any]], stored: Stored) -> None:
    """Each part loads back with the stored images, bit for bit, and their labels."""
    for part in PARTS:
        chosen = [i for i in items if i["part"] == part]
        split = load_part(folder, part)
        assert len(split.images) == len(chosen)
        for image, label, item in zip(split.images, split.labels, chosen, strict=True):
            assert image.tobytes() == stored.images[item["input_id"]]
            assert int(label) == item["label"]


def test_export_holds_the_latest_corrections_bit_for_bit(
    engine: Engine, stored: Stored, tmp_path: Path
) -> None:
    result = export(engine, tmp_path / "out")
    items = result.manifest["items"]
    assert [i["input_id"] for i in items] == sorted(stored.expected)
    for item in items:
        fb, label, version, guess = stored.expected[item["input_id"]]
        assert (item["feedback_id"], item["label"]) == (fb, label)
        assert (item["model_version"], item["predicted"]) == (version, guess)
        sha = hashlib.sha256(stored.images[item["input_id"]]).hexdigest()
        assert item["image_sha256"] == sha and item["part"] == part_of(sha)
    assert result.feedback_ids == sorted(e[0] for e in stored.expected.values())
    assert stored.superseded not in result.feedback_ids
    check_files(result.path, items, stored)

    manifest = read_manifest(result.path)
    assert manifest == result.manifest
    assert manifest["format"] == 1
    assert manifest["time_range"] == [T0.isoformat(), (T0 + timedelta(hours=34)).isoformat()]
    counts = {p: sum(i["part"] == p for i in items) for p in PARTS}
    assert result.counts == manifest["counts"] == counts | {"items": len(stored.expected)}
    assert counts["train"] and counts["heldout"]  # both parts exercised
    sides = {p: {i["image_sha256"] for i in items if i["part"] == p} for p in PARTS}
    assert not sides["train"] & sides["heldout"]
    assert len({i["image_sha256"] for i in items}) < len(items)  # the repeated image


def test_the_same_state_exports_byte_identical_files(
    engine: Engine, stored: Stored, tmp_path: Path
) -> None:
    first = export(engine, tmp_path / "a", model="v1", with_labelled=True)
    (tmp_path / "b").mkdir()  # an empty folder may be the target
    second = export(engine, tmp_path / "b", model="v1", with_labelled=True)
    assert sha256s(first.path) == sha256s(second.path)
    assert set(sha256s(first.path)) == {MANIFEST} | set(first.manifest["files"])


def test_filters_by_feedback_time_and_corrected_version(
    engine: Engine, stored: Stored, tmp_path: Path
) -> None:
    window = export(
        engine, tmp_path / "window", since=T0 + timedelta(hours=5), until=T0 + timedelta(hours=9)
    )
    assert [i["feedback_id"] for i in window.manifest["items"]] == sorted(
        fb for fb, *_ in stored.expected.values() if fb in window.feedback_ids
    )
    assert len(window.feedback_ids) == 4  # hours 5, 6, 7, 8: until is exclusive
    assert window.manifest["filters"] == {
        "since": "2026-01-01T05:00:00+00:00",
        "until": "2026-01-01T09:00:00+00:00",
        "model": None,
        "with_labelled": False,
        "include_anonymous": False,
    }
    # The twice-corrected input's first correction (hour 1) does not bring it in.
    early = export(engine, tmp_path / "early", until=T0 + timedelta(hours=2))
    assert len(early.feedback_ids) == 2 and stored.superseded not in early.feedback_ids

    for version in ("v1", "v2"):
        only = export(engine, tmp_path / version, model=version)
        assert {i["model_version"] for i in only.manifest["items"]} == {version}
        assert sorted(only.feedback_ids) == sorted(
            fb for fb, _, v, _ in stored.expected.values() if v == version
        )
    with pytest.raises(ExportError, match="no model version 'v9'"):
        export(engine, tmp_path / "v9", model="v9")
    assert not (tmp_path / "v9").exists()


def test_with_labelled_adds_labelled_inputs_without_feedback(
    engine: Engine, stored: Stored, tmp_path: Path
) -> None:
    result = export(engine, tmp_path / "all", with_labelled=True)
    items = result.manifest["items"]
    assert [i["input_id"] for i in items] == sorted([*stored.expected, *stored.labelled])
    (input_id, label), = stored.labelled.items()  # fmt: skip
    extra = next(i for i in items if i["input_id"] == input_id)
    assert extra["label"] == label and extra["feedback_id"] is None
    assert extra["model_version"] is None and extra["predicted"] is None
    check_files(result.path, items, stored)
    assert result.counts["items"] == len(result.feedback_ids) + 1

    late = export(engine, tmp_path / "late", since=T0 + timedelta(hours=35), with_labelled=True)
    assert [i["input_id"] for i in late.manifest["items"]] == [input_id]
    assert late.manifest["time_range"] is None


def test_an_empty_store_exports_empty_parts(engine: Engine, tmp_path: Path) -> None:
    result = export(engine, tmp_path / "empty")
    assert result.counts == {"train": 0, "heldout": 0, "items": 0}
    assert result.feedback_ids == [] and result.manifest["time_range"] is None
    for part in PARTS:
        assert len(load_part(result.path, part).images) == 0


def test_a_failed_export_leaves_no_folder(
    engine: Engine, stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = feedback_export.write_part
    calls = []

    def second_part_fails(*args: Any) -> dict[str, str]:
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args)

    monkeypatch.setattr(feedback_export, "write_part", second_part_fails)
    exports = tmp_path / "exports"
    with pytest.raises(OSError, match="disk full"):
        export(engine, exports / "out")
    assert len(calls) == 2
    assert list(exports.iterdir()) == []  # neither the folder nor its staging copy


def test_a_folder_in_the_way_is_refused(engine: Engine, stored: Stored, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(engine, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_the_command_prints_one_summary_line(
    cli_env: Settings, engine: Engine, mnist_test: Split, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["feedback", "export", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "exported 0 images (0 corrections)" in one_line(result.output)
    assert "nothing to train on" in result.output

    stored = build(engine, mnist_test)
    out = tmp_path / "out"
    result = runner.invoke(app, ["feedback", "export", str(out), "--since", "2026-01-01",
                                 "--with-labelled"])  # fmt: skip
    assert result.exit_code == 0, result.output
    n = len(stored.expected)
    line = one_line(result.output)
    assert line.startswith(f"exported {n + 1} images ({n} corrections, 1 labelled): ")
    assert str(out) in line and "nothing" not in line
    assert read_manifest(out)["filters"]["since"] == "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--since", "yesterday"], 2, "--since 'yesterday' is not an ISO date"),
        (["--until", "2026-13-01"], 2, "--until '2026-13-01' is not an ISO date"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], 2, "is not before --until"),
        (["--model", "v9"], 1, "no model version 'v9' in the database"),
    ],
)
def test_the_command_errors_are_one_line(
    cli_env: Settings, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(app, ["feedback", "export", str(tmp_path / "out"), *args])
    assert result.exit_code == code
    line = one_line(result.output)
    assert line.startswith("error:") and message in line
    assert not (tmp_path / "out").exists()


def test_the_command_refuses_a_folder_in_use(cli_env: Settings, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    result = runner.invoke(app, ["feedback", "export", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "is not an empty folder" in one_line(result.output)
