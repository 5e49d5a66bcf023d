"""`make stack-test`: the whole Compose stack, built and run for real, used only through
the proxy's published port (and `docker compose exec` where an operator would look).
The tests run in file order; each starts from the state the one before left."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from digitlab.data import Split
from tests.stack.conftest import Stack
from tests.stack.load import json_bodies, run_load
from tests.utils.served import chunks, json_body, urllib_post

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1800)]
CLIENTS = 16


@pytest.fixture(scope="module")
def bodies(mnist_test: Split) -> list[bytes]:
    return json_bodies(mnist_test.images[:500])


def post(stack: Stack, path: str, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(stack.base + path, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def serving_version(stack: Stack) -> str:
    status, body, _ = stack.get("/api/v1/models/current")
    assert status == 200, body
    return str(json.loads(body)["version"])


def test_build_and_up_download_train_and_serve(stack: Stack) -> None:
    stack.timed("docker compose build", "build")
    stack.timed(
        "docker compose up -d --wait (migrate, download, train, serve)", "up", "-d", "--wait"
    )
    train_log = stack.compose("logs", "train")
    if stack.mirror_log is not None:  # the trainer's real download, from the local mirror
        assert stack.mirror_downloads() == 4, stack.mirror_log.read_text()
        assert train_log.count(", verified") == 4, train_log
    assert stack.psql("SELECT version_num FROM alembic_version"), "migrate did not run"
    version = serving_version(stack)
    assert stack.psql("SELECT version FROM models WHERE is_active") == [version]
    for image in ("digitlab-serve:latest", "digitlab-train:latest"):
        size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
        stack.note(f"image {image}: {size / 1e6:,.0f} MB")


def test_the_upgrade_service_switches_to_the_robust_model_under_load(
    stack: Stack, bodies: list[bytes]
) -> None:
    """`up` served the first model at once; the upgrade service trains the robust recipe
    beside it and promotes it, and the api follows without a failed request."""
    first = serving_version(stack)
    assert first.endswith("-mnist-plain"), first  # DIGITLAB_RECIPE in the stack's .env
    started = time.monotonic()
    versions: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    while (current := serving_version(stack)) == first:
        log = stack.compose("logs", "--no-color", "--tail=30", "upgrade")
        assert time.monotonic() - started < 900, log
        assert "upgrade failed" not in log and "upgrade kept" not in log, log
        # Paced: the trainer runs at a lower priority than the api and needs the CPU too.
        result = run_load(stack.port, bodies, 2, 100)
        versions.update(result.versions)
        failures.update(result.failures)
        stack.answered += result.ids
        time.sleep(1)
    stack.note(
        f"upgrade service: {current} served {time.monotonic() - started:.0f} s after "
        f"`up` returned; answers meanwhile: {dict(versions)}"
    )
    assert current.endswith("-mnist-fast"), current
    after = run_load(stack.port, bodies, 2, 100)
    stack.answered += after.ids
    assert not failures and not after.failures, (failures, after.failures)
    assert versions[first] > 0 and dict(after.versions) == {current: len(after.ids)}
    assert "upgrade promoted" in stack.compose("logs", "upgrade")
    status, body, _ = stack.get("/api/v1/upgrade")
    assert status == 200 and json.loads(body)["state"] == "promoted", body
    assert b'data-state="promoted"' in stack.get("/models")[1]
    # It stays up, idle, so that a later `up --wait` does not count it as failed.
    assert "upgrade" in stack.compose("ps", "--services", "--status", "running")


def test_predictions_pages_and_metrics_through_the_proxy(
    stack: Stack, mnist_test: Split, bodies: list[bytes]
) -> None:
    status, answer = post(stack, "/api/v1/predict", bodies[0], "application/json")
    assert status == 200 and answer["prediction"] == int(mnist_test.labels[0]), answer
    stack.answered.append(int(str(answer["prediction_id"])))
    png = base64.b64decode(json.loads(bodies[1])["image"])
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    for path in ("/api/v1/predict", "/predict"):  # ours and the reference API's path
        status, answer = post(stack, path, form, f"multipart/form-data; boundary={boundary}")
        assert status == 200 and answer["prediction"] == int(mnist_test.labels[1]), answer
        stack.answered.append(int(str(answer["prediction_id"])))
    # Bad input through the proxy: a 4xx JSON message, nothing stored.
    status, answer = post(stack, "/api/v1/predict", b'{"image": "not base64!"}', "application/json")
    assert status == 422 and "base64" in str(answer["detail"])

    version = serving_version(stack)
    pages = ["/", "/models", "/login", "/docs", "/openapi.json", "/static/app.css",
             "/static/recognise.js", f"/models/{version}/curves.png",
             f"/models/{version}/confusion.png"]  # fmt: skip
    for path in pages:
        status, body, _ = stack.get(path)
        assert status == 200 and body, f"{path}: {status} {body[:200]!r}"
    # The confusion matrix came from the card: the api container has no MNIST files.
    assert "No such file" in stack.compose(
        "exec", "-T", "api", "ls", "/data/mnist/train-images-idx3-ubyte.gz", check=False
    )
    # /metrics: scraped from each replica on the compose network, not public.
    status, body, content_type = stack.get("/metrics")
    assert status == 404 and content_type.startswith("application/json"), body
    assert "digitlab_http_requests_total" in stack.in_replica(1, "/metrics")


def test_stored_data_is_private_with_the_viewer_token(stack: Stack, bodies: list[bytes]) -> None:
    status, answer = post(stack, "/api/v1/predict", bodies[2], "application/json")
    assert status == 200, answer
    stack.answered.append(int(str(answer["prediction_id"])))
    image, token = (
        f"/api/v1/inputs/{answer['input_data_id']}/image.png",
        stack.env["DIGITLAB_VIEWER_TOKEN"],
    )
    for path in ("/api/v1/predictions", f"/api/v1/predictions/{answer['prediction_id']}", image):
        assert stack.get(path)[0] == 401, path
        assert stack.get(path, "not the token")[0] == 401, path
        assert stack.get(path, token)[0] == 200, path
    # The answer's own image link opens that one image without the token.
    status, body, content_type = stack.get(str(answer["image_url"]))
    assert status == 200 and content_type == "image/png" and body.startswith(b"\x89PNG")
    # A browser is sent from History to the sign-in form.
    status, body, _ = stack.get("/history")
    assert status == 200 and b'name="token"' in body and b"/history" in body


@pytest.mark.parametrize(
    ("size", "framing", "who"),
    [
        (5_500_000, "content-length", "the API"),  # under the proxy's limit, over the API's
        (9_000_000, "content-length", "the proxy"),
        (9_000_000, "chunked", "the proxy"),
    ],
)
def test_an_oversized_body_gets_its_413_through_the_proxy(
    stack: Stack, size: int, framing: str, who: str
) -> None:
    """urllib sends the whole body before it reads: it still gets the 413 and its message."""
    rows = stack.stored_prediction_ids()
    body = json_body(size)
    headers = {"Content-Type": "application/json"}
    if framing == "content-length":
        answer = urllib_post(stack.base + "/api/v1/predict", body, headers)
    else:  # an iterable without a length goes out chunk-encoded
        answer = urllib_post(stack.base + "/api/v1/predict", chunks(body), headers)
    assert answer.status == 413, (who, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/json")
    detail = answer.json()["detail"]
    assert "smaller image" in detail and ("proxy" in detail) == (who == "the proxy"), detail
    assert stack.stored_prediction_ids() == rows


def test_every_200_answer_is_stored_and_nothing_else(stack: Stack, bodies: list[bytes]) -> None:
    result = run_load(stack.port, bodies, CLIENTS, 1600)
    stack.note(f"1 api replica, {CLIENTS} clients through the proxy: {result.summary()}")
    assert not result.failures
    stack.answered += result.ids
    assert stack.stored_prediction_ids() == set(stack.answered)


def test_three_replicas_share_the_load(stack: Stack, bodies: list[bytes]) -> None:
    stack.timed("scale to 3 api replicas", "up", "-d", "--wait", "--scale", "api=3")
    assert len(stack.replicas()) == 3
    before = [stack.predict_count(i) for i in (1, 2, 3)]
    result = run_load(stack.port, bodies, CLIENTS, 2400)
    stack.note(f"3 api replicas, {CLIENTS} clients through the proxy: {result.summary()}")
    assert not result.failures
    stack.answered += result.ids
    share = [stack.predict_count(i) - b for i, b in zip((1, 2, 3), before, strict=True)]
    stack.note(f"answers per replica, from each replica's /metrics: {share}")
    assert sum(share) == len(result.ids)
    assert min(share) > len(result.ids) / 10, share
    assert stack.stored_prediction_ids() == set(stack.answered)


def test_a_replica_killed_during_load(stack: Stack, bodies: list[bytes]) -> None:
    victim = stack.replicas()[0]
    results = []
    loader = threading.Thread(
        target=lambda: results.append(run_load(stack.port, bodies, CLIENTS, 3200))
    )
    loader.start()
    time.sleep(1.5)
    docker("kill", victim)
    loader.join()
    during = results[0]
    stack.note(f"one of 3 replicas killed (SIGKILL) during load: {during.summary()}")
    stack.answered += during.ids
    stored = stack.stored_prediction_ids()
    assert set(stack.answered) <= stored  # every 200 answer is stored
    unanswered = len(stored - set(stack.answered))
    stack.note(f"rows stored without a 200 answer (the killed replica's last): {unanswered}")
    after = run_load(stack.port, bodies, CLIENTS, 1600)
    stack.note(f"after the kill: {after.summary()}")
    assert not after.failures, after.failures
    stack.answered += after.ids
    assert set(stack.answered) <= stack.stored_prediction_ids()
    stack.compose("up", "-d", "--wait", "--scale", "api=3")  # back to three


def test_a_new_version_reaches_every_replica_without_restart(
    stack: Stack, bodies: list[bytes]
) -> None:
    old = serving_version(stack)
    started = stack.compose("ps", "-q", "api").split()
    starts = {c: docker("inspect", "-f", "{{.State.StartedAt}}", c) for c in started}
    # Data already in the volume: this training downloads nothing.
    fetched = stack.mirror_downloads()
    stack.timed(
        "docker compose run --rm train digitlab train --no-activate",
        "run",
        "--rm",
        "train",
        "digitlab",
        "train",
        "--no-activate",
        "--epochs",
        "1",
    )
    assert stack.mirror_downloads() == fetched
    versions = json.loads(stack.get("/api/v1/models")[1])
    new = next(v["version"] for v in versions if v["version"] != old and not v["current"])
    stack.compose("run", "--rm", "train", "digitlab", "models", "use", new)
    # The replicas share no models volume: each hears of the promotion from PostgreSQL.
    switched = time.monotonic()
    while not all(
        json.loads(stack.in_replica(i, "/api/v1/models/current"))["version"] == new
        for i in (1, 2, 3)
    ):
        assert time.monotonic() - switched < 10, "not every replica serves the new version"
        time.sleep(0.2)
    stack.note(
        f"all 3 replicas serving the new version {time.monotonic() - switched:.1f} s after"
        " `models use` returned (each check is a `docker compose exec`)"
    )
    result = run_load(stack.port, bodies, CLIENTS, 480)
    assert dict(result.versions) == {new: len(result.ids)} and not result.failures
    stack.answered += result.ids
    for c, when in starts.items():
        assert docker("inspect", "-f", "{{.State.StartedAt}}", c) == when, f"{c} restarted"


def test_down_and_up_keep_the_data_and_the_model(stack: Stack) -> None:
    version = serving_version(stack)
    rows = stack.stored_prediction_ids()
    stack.compose("down")
    stack.timed(
        "docker compose up -d --wait after down (model present, training skipped)",
        "up",
        "-d",
        "--wait",
    )
    assert serving_version(stack) == version
    assert stack.stored_prediction_ids() == rows
    assert "not training" in stack.compose("logs", "train")


def test_the_serve_image_is_non_root_and_has_no_torch(stack: Stack) -> None:
    assert stack.compose("exec", "-T", "api", "id", "-u").strip() != "0"
    out = stack.compose("exec", "-T", "api", "python", "-c", "import torch", check=False)
    assert "ModuleNotFoundError" in out, out
    assert "2." in stack.compose(
        "run",
        "--rm",
        "--no-deps",
        "train",
        "python",
        "-c",
        "import torch; print(torch.__version__)",
    )


def test_the_retrain_service_runs_behind_its_profile(stack: Stack) -> None:
    # Not started by `up`; run by hand (or cron). No corrections were given here, so it
    # exports nothing and says there is nothing to do, with the serving model unchanged.
    assert "retrain" not in stack.compose("ps", "--services")
    version = serving_version(stack)
    out = stack.compose("--profile", "retrain", "run", "--rm", "retrain")
    assert "exported 0 corrections" in out and "nothing to do" in out, out
    assert serving_version(stack) == version
