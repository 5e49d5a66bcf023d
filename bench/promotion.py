"""Promotion benchmark: how long after `activate_model` returns every serving process
answers with the new version, for two `digitlab serve` processes on a throwaway
PostgreSQL.

    python bench/promotion.py               # 20 promotions each way
    python bench/promotion.py --rounds 5

Two setups side by side in the same run:
- database: the registry in PostgreSQL; each process has its own empty model folder and
  hears of a promotion through LISTEN/NOTIFY (what a cluster runs);
- shared folder (the baseline): both processes read one model folder and notice the
  CURRENT pointer move (what one machine or a Compose volume runs).

Each promotion alternates between two copies of the current model (`digitlab train`
first), and the time is taken until both processes answer GET /api/v1/models/current
with it, polled every 5 ms. Needs the MNIST-trained model only, not the data.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from digitlab.config import Settings, get_settings
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import activate_model
from digitlab.store.testing_pg import PostgresServer, free_port
from harness import HOST, SERVICE, fresh_database, start_service

TIMEOUT = 10.0  # seconds a promotion may take before the run fails


def two_versions(source: registry.ModelVersion, folder: Path) -> list[str]:
    """Two copies of `source` under new version ids, in `folder`."""
    names = [f"{source.version}-bench-a", f"{source.version}-bench-b"]
    for name in names:
        shutil.copytree(source.path, folder / name)
        card = json.loads((folder / name / registry.CARD_FILE).read_text())
        card["version"] = name
        (folder / name / registry.CARD_FILE).write_text(json.dumps(card))
    return names


def serving(port: int) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    conn.request("GET", "/api/v1/models/current")
    version = str(json.loads(conn.getresponse().read())["version"])
    conn.close()
    return version


def time_promotions(
    promote: Callable[[str], None], ports: list[int], versions: list[str], rounds: int
) -> list[float]:
    """Seconds from `promote(v)` returning until every port serves v, per promotion."""
    seconds = []
    for i in range(rounds):
        target = versions[(i + 1) % 2]  # the first one is active at the start
        promote(target)
        start = time.perf_counter()
        while not all(serving(p) == target for p in ports):
            if time.perf_counter() - start > TIMEOUT:
                raise SystemExit(f"promotion to {target} not served within {TIMEOUT} s")
            time.sleep(0.005)
        seconds.append(time.perf_counter() - start)
        time.sleep(0.2)
    return seconds


def run_setup(
    name: str, url: str, folders: list[Path], promote: Callable[[str], None], **kw: object
) -> list[float]:
    services, ports = [], []
    try:
        for i, folder in enumerate(folders):
            os.environ["DIGITLAB_MODEL_DIR"] = str(folder)
            port = free_port()
            log = Path(tempfile.gettempdir()) / f"promotion-{name}-{i}.log"
            services.append(start_service(SERVICE, url, port, log))
            ports.append(port)
        return time_promotions(promote, ports, **kw)  # type: ignore[arg-type]
    finally:
        for service in services:
            service.terminate()
            service.wait(timeout=30)


def promote(settings: Settings, version: str) -> None:
    activate_model(settings, version, by="bench")


def describe(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):6.1f} ms, max {ms[-1]:6.1f} ms ({len(ms)} promotions)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    settings = get_settings()
    source = registry.resolve(settings.model_dir)
    work = Path(tempfile.mkdtemp(prefix="digitlab-promotion-"))
    trainer = work / "trainer"
    versions = two_versions(source, trainer)
    with PostgresServer.start() as pg:
        db_url = fresh_database(pg, "promotion_db")
        in_db = Settings(model_dir=trainer, database_url=db_url, _env_file=None)  # type: ignore[call-arg]
        promote(in_db, versions[0])
        database = run_setup(
            "database",
            db_url,
            [work / "replica-a", work / "replica-b"],
            lambda v: promote(in_db, v),
            versions=versions,
            rounds=args.rounds,
        )
        # The baseline: one shared folder, the pointer moved; SQLite keeps the folder
        # as the registry, so the same lifecycle call moves only the pointer.
        shared_url = f"sqlite:///{work / 'shared.db'}"
        shared = Settings(model_dir=trainer, database_url=shared_url, _env_file=None)  # type: ignore[call-arg]
        subprocess.run(
            [*SERVICE[:-1], "db", "upgrade"],
            env=os.environ | {"DIGITLAB_DATABASE_URL": shared_url},
            check=True,
            capture_output=True,
        )
        promote(shared, versions[0])
        folder = run_setup(
            "folder",
            shared_url,
            [trainer, trainer],
            lambda v: promote(shared, v),
            versions=versions,
            rounds=args.rounds,
        )
    shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"promotion until both processes serve it (load average {load}):")
    print(f"  registry in PostgreSQL, separate folders: {describe(database)}")
    print(f"  baseline, one shared folder (CURRENT):    {describe(folder)}")


if __name__ == "__main__":
    main()
