"""The API keeps the contract its own /openapi.json states, under any input: schemathesis
reads the schema and sends what it allows and what it forbids to a real service (uvicorn,
over SQLite and over PostgreSQL) with every check on: no 5xx, every status and header
declared, every body as the schema says, invalid data refused, valid data taken, tokens
not ignored. Every operation, with the viewer, admin and labeller tokens and a wrong one.

Deterministic (derandomized) and bounded: a few examples per operation and phase.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

import tests.api.contract_hooks  # real images for schema-valid cases
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import ADMIN_TOKEN, VIEWER_TOKEN, ready_settings
from tests.utils.served import Served, serving

LABELLER_TOKEN = "contract-labeller-token-5e1b"
TOKENS = {
    "viewer": VIEWER_TOKEN,
    "admin": ADMIN_TOKEN,
    "labeller": LABELLER_TOKEN,
    "wrong": "not-a-token",
}
EXAMPLES = 8


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def contract_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, linear_models: Path
) -> Iterator[Served]:
    """The service with all three tokens set, over one store, with a stored prediction."""
    folder = tmp_path_factory.mktemp("contract")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'store.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database(f"contract_{uuid.uuid4().hex[:8]}")
    settings = ready_settings(folder, url, linear_models)
    tokens = {
        "DIGITLAB_VIEWER_TOKEN": VIEWER_TOKEN,
        "DIGITLAB_ADMIN_TOKEN": ADMIN_TOKEN,
        "DIGITLAB_LABELLER_TOKEN": LABELLER_TOKEN,
        # The "wrong" token's hundreds of 401s would otherwise block this client's other
        # tokens with 429 for a minute (tested in test_auth_hardening.py).
        "DIGITLAB_WRONG_TOKENS_PER_MINUTE": "1000000",
    }
    with serving(settings, folder, **tokens) as served:
        image = tests.api.contract_hooks.IMAGES[0]
        r = httpx.post(f"{served.url}/api/v1/predict", files={"file": ("a.png", image)})
        assert r.status_code == 200, r.text
        yield served


@pytest.fixture(params=sorted(TOKENS))
def contract_schema(
    request: pytest.FixtureRequest, contract_service: Served
) -> schemathesis.BaseSchema:
    """The service's own schema; every request carries the token named by the param."""
    schema = schemathesis.openapi.from_url(f"{contract_service.url}/openapi.json")
    schema.config.update(headers={"Authorization": f"Bearer {TOKENS[request.param]}"})
    schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("contract_schema")


@pytest.fixture(autouse=True)
def _node_id(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 reads `Node._nodeid`, which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_the_contract(case: Case, contract_service: Served) -> None:
    response = case.call_and_validate()
    # Nothing internal in any answer: no database URL, host, folder, SQL or traceback.
    folder = str(contract_service.settings.model_dir.parent).encode()
    for leak in (b"postgresql", b"sqlite", b"127.0.0.1", folder, b"SELECT ", b"Traceback"):
        assert leak not in response.content, response.content[:500]


def test_sequences_of_calls_keep_the_contract(contract_schema: schemathesis.BaseSchema) -> None:
    """The stateful phase: predict, then read, fetch the image of and give feedback on
    what was made (links schemathesis infers from the answers), every check on each."""
    workflow = contract_schema.as_state_machine()
    workflow.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=4,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
