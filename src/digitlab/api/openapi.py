"""The OpenAPI schema as the service really behaves: FastAPI's, with the error answers
as shared `components.responses` (one `ErrorBody` shape) in place of FastAPI's
validation-error schema, which this service never answers with."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from digitlab.api.responses import SHARED, component_name, shared_components

ERROR_REF = "#/components/schemas/ErrorBody"
# FastAPI's own 422 shape (a list of problems); every 422 here is an ErrorBody instead.
UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")


VALIDATION_REF = "#/components/schemas/HTTPValidationError"
# Operations open to anyone that a labeller's token changes: feedback without it is an
# anonymous correction (rate-limited), with it a trusted one.
LABELLER_OPTIONAL = ("feedback", "correct_reading")


def _share(operation: dict[str, Any]) -> None:
    for status, response in list(operation.get("responses", {}).items()):
        code = int(status) if status.isdigit() else None
        content = response.get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref")
        # FastAPI adds its own 422 to a route with parameters that did not declare one;
        # the answer is an ErrorBody all the same (errors.install), so say so.
        if code in SHARED and ref in (ERROR_REF, VALIDATION_REF):
            operation["responses"][status] = {
                "$ref": f"#/components/responses/{component_name(code)}"
            }


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    # Without DIGITLAB_VIEWER_TOKEN the reads are open: the viewer scheme is optional then.
    viewer_optional = not app.state.service.settings.viewer_token
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            _share(operation)
            security = operation.get("security", [])
            if viewer_optional and {"viewer": []} in security and {} not in security:
                security.append({})
            if operation.get("operationId") in LABELLER_OPTIONAL and {} not in security:
                security.append({})
            # A client that sent too many wrong tokens gets 429 for any it sends (auth.py).
            if any(security) and "429" not in operation.setdefault("responses", {}):
                operation["responses"]["429"] = {
                    "$ref": f"#/components/responses/{component_name(429)}"
                }
    components = schema.setdefault("components", {})
    components["responses"] = shared_components()
    for name in UNUSED_SCHEMAS:
        components.get("schemas", {}).pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Serve `build(app)` at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
