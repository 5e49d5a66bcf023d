"""The generated reference pages, written at `mkdocs build` time by mkdocs-gen-files:
reference/cli.md from the Typer app, reference/settings.md from `Settings`' fields and
reference/http-api.md from the app's OpenAPI schema and its route table. Nothing in them
is copied by hand, so a new command, setting or route shows up by itself.

python docs/gen/reference.py    # prints the three pages, without MkDocs
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import typer
from fastapi import FastAPI, routing

from digitlab.config import Settings


def cell(text: object) -> str:
    """`text` made safe for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def anchor(words: str) -> str:
    return "-".join(words.lower().replace("/", " ").replace("{", "").replace("}", "").split())


# ---------------------------------------------------------------- CLI


# Typer >= 0.2x vendors its own click, so commands and parameters are read by duck typing
# (`commands`, `param_type_name`), not by isinstance against the click package.
Command = Any


def commands() -> Iterator[tuple[str, Command]]:
    """Every visible command of `digitlab`, the root first, as ("digitlab models use", cmd)."""
    from digitlab.cli.main import app

    def walk(path: str, command: Command) -> Iterator[tuple[str, Command]]:
        yield path, command
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                if not sub.hidden:
                    yield from walk(f"{path} {name}", sub)

    yield from walk("digitlab", typer.main.get_command(app))


def param_type(param: Any) -> str:
    """The parameter's type as the help shows it (`INTEGER`, `PATH`, a choice list);
    Typer's own `bare_type` exists only from 0.28 on."""
    if hasattr(param, "bare_type"):
        return str(param.bare_type())
    kind = param.type
    choices = getattr(kind, "choices", None)
    if choices:
        return "|".join(str(c) for c in choices)
    return str(getattr(kind, "name", kind)).upper()


def param_row(param: Any) -> str:
    default = "" if param.default is None or callable(param.default) else param.default
    if param.param_type_name == "option":
        name = " / ".join(", ".join(opts) for opts in (param.opts, param.secondary_opts) if opts)
        if param.is_flag and not param.secondary_opts and default is False:
            default = ""
    else:
        name = (param.metavar or param.name).upper()
    kind = "flag" if getattr(param, "is_flag", False) else param_type(param)
    env = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or [])
    help_text = getattr(param, "help", None) or ""
    if param.required:
        help_text = f"Required. {help_text}"
    if env:
        help_text += f" (env `{env}`)"
    value = f"`{cell(default)}`" if default != "" else ""
    return f"| `{cell(name)}` | {cell(kind)} | {value} | {cell(help_text)} |"


def cli_markdown() -> str:
    lines = [
        "# CLI reference",
        "",
        "Generated from the Typer app (`digitlab.cli.main`) when the docs are built;",
        "`digitlab COMMAND --help` prints the same. Every command exits non-zero with one",
        "`error:` line on bad input (2 for bad arguments, 1 for a failure).",
        "",
    ]
    for path, command in commands():
        ctx = command.context_class(command, info_name=path)
        usage = " ".join([path, *command.collect_usage_pieces(ctx)])
        lines += [f"## {path} {{ #{anchor(path)} }}", "", (command.help or "").strip(), ""]
        lines += ["```text", usage, "```", ""]
        if hasattr(command, "commands"):
            subs = [f"[`{path} {n}`](#{anchor(f'{path} {n}')})" for n in command.commands]
            lines += ["Commands: " + ", ".join(subs) + ".", ""]
        params = [p for p in command.params if not getattr(p, "hidden", False)]
        if params:
            lines += ["| option | type | default | meaning |", "|---|---|---|---|"]
            lines += [param_row(p) for p in params] + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------- settings


def shown_default(value: object) -> str:
    if value is None:
        return "unset"
    text = str(value)
    home = str(Path.home())
    # The cache folders default under the builder's home: say `~` as users read it.
    if isinstance(value, Path) and text.startswith(home + "/"):
        text = "~" + text[len(home) :]
    return f"`{cell(text if text else repr(value))}`"


def type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def settings_markdown() -> str:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    lines = [
        "# Settings reference",
        "",
        "One typed settings object, `digitlab.config.Settings`, read from the environment",
        f"(prefix `{prefix}`) and from a `.env` file in the working folder. This table is",
        "generated from its fields when the docs are built.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(
            f"| `{(prefix + name).upper()}` | `{cell(type_name(field.annotation))}` "
            f"| {shown_default(default)} | {cell(field.description or '')} |"
        )
    lines += [
        "",
        "Lists (`DIGITLAB_MIRRORS`) are given as JSON, e.g.",
        "`DIGITLAB_MIRRORS='[\"http://mirror.local/mnist/\"]'`. What each token opens, and",
        "who may see stored data without one: [Operations](../operations.md#tokens). The",
        "database URL and its schema: [Prediction store](../store.md).",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- HTTP API


@contextmanager
def docs_app() -> Iterator[FastAPI]:
    """The real app over an empty SQLite file and an empty model folder: it starts not
    ready, which changes no route. DIGITLAB_ variables of the builder are left out, so the
    pages do not depend on who builds them."""
    from digitlab.app import create_app

    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGITLAB_")}
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, clean, clear=True):
        root = Path(tmp)
        settings = Settings(
            model_dir=root / "models",
            report_dir=root / "reports",
            database_url=f"sqlite:///{root / 'docs.db'}",
            _env_file=None,  # type: ignore[call-arg]
        )
        logging.getLogger("digitlab").setLevel(logging.ERROR)  # "no model yet" is expected
        app = create_app(settings)
        try:
            yield app
        finally:
            app.state.service.engine.dispose()


def schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{anchor('schema ' + name)})"
    if "anyOf" in schema:
        return " or ".join(schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    if schema.get("properties"):  # an inline body (openapi_extra), not a named model
        fields = ", ".join(f"`{n}`: {schema_type(f)}" for n, f in schema["properties"].items())
        return f"object with {fields}"
    return str(schema.get("type", "any"))


def operation_lines(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} `{path}` {{ #{anchor(method + ' ' + path)} }}", ""]
    lines += [f"**{op.get('summary', '')}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    if op.get("security"):
        schemes = ", ".join(name for entry in op["security"] for name in entry)
        lines += [f"Security: {schemes}.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {cell(schema_type(p.get('schema', {})))} "
                f"| {'yes' if p.get('required') else 'no'} | {cell(p.get('description', ''))} |"
            )
        lines.append("")
    body = op.get("requestBody", {}).get("content", {})
    if body:
        kinds = [f"`{kind}` ({schema_type(c.get('schema', {}))})" for kind, c in body.items()]
        lines += ["Body: " + "; ".join(kinds) + ".", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, answer in op.get("responses", {}).items():
        content = answer.get("content", {})
        kinds = ", ".join(f"`{k}` {schema_type(c.get('schema', {}))}" for k, c in content.items())
        lines.append(f"| {status} | {cell(answer.get('description', ''))} | {cell(kinds)} |")
    return [*lines, ""]


def flat_routes(app: FastAPI) -> list[Any]:
    """app.routes with included routers flattened: newer FastAPI keeps each included router
    as one lazy entry there."""
    flatten = getattr(routing, "iter_route_contexts", None)
    return list(flatten(app.routes)) if flatten else list(app.routes)


def route_rows(app: FastAPI) -> list[str]:
    rows = []
    for route in flat_routes(app):
        path = getattr(route, "path", "")
        methods = ", ".join(sorted(getattr(route, "methods", None) or ["(mount)"]))
        in_schema = "yes" if getattr(route, "include_in_schema", False) else "no"
        name = getattr(route, "name", "")
        rows.append(f"| `{cell(path)}` | {methods} | `{name}` | {in_schema} |")
    return rows


def api_markdown() -> str:
    with docs_app() as app:
        schema = app.openapi()
        routes = route_rows(app)
    lines = [
        "# HTTP API reference",
        "",
        f"Generated from the app's OpenAPI schema ({schema['info']['title']}, version",
        f"{schema['info']['version']}) when the docs are built. A running service serves",
        "the same schema at `/openapi.json`, with interactive pages at `/docs` and `/redoc`.",
        "The [HTTP API guide](../api.md) shows the routes in use.",
        "",
    ]
    by_tag: dict[str, list[str]] = {}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).extend(operation_lines(method, path, op))
    for tag, ops in by_tag.items():
        lines += [f"## {tag}", "", *ops]
    lines += ["## Schemas", ""]
    for name, model in schema.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name} {{ #{anchor('schema ' + name)} }}", ""]
        if model.get("description"):
            lines += [cell(model["description"]), ""]
        props = model.get("properties", {})
        if props:
            required = set(model.get("required", []))
            lines += ["| field | type | required | meaning |", "|---|---|---|---|"]
            for field, spec in props.items():
                needed = "yes" if field in required else "no"
                meaning = cell(spec.get("description", ""))
                lines.append(f"| `{field}` | {cell(schema_type(spec))} | {needed} | {meaning} |")
            lines.append("")
    lines += [
        "## Every route",
        "",
        "Every route the app answers, from its route table, including the pages and the",
        "static files that the OpenAPI schema leaves out.",
        "",
        "| path | methods | name | in OpenAPI |",
        "|---|---|---|---|",
        *routes,
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- store schema


def schema_markdown() -> str:
    """The tables as a Mermaid ER diagram, from the SQLAlchemy models (what the Alembic
    migrations build), appended to the prediction store's page."""
    from digitlab.store.models import Base

    lines = [
        "",
        "## Schema",
        "",
        "Generated from `digitlab.store.models` when the docs are built (the Alembic",
        "migrations build the same tables). Keys: PK primary, FK foreign, UK unique.",
        "",
        "```mermaid",
        "erDiagram",
    ]
    for table in Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            child = fk.parent
            alone = child.primary_key and len(table.primary_key.columns) == 1
            many = "o|" if alone or child.unique else "o{"
            one = "|o" if child.nullable else "||"
            lines.append(f'    {fk.column.table.name} {one}--{many} {table.name} : "{child.name}"')
    for table in Base.metadata.sorted_tables:
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = [k for k, on in (("PK", column.primary_key), ("FK", column.foreign_keys),
                                    ("UK", column.unique)) if on]  # fmt: skip
            kind = type(column.type).__name__
            lines.append(f"        {kind} {column.name} {', '.join(keys)}".rstrip())
        lines.append("    }")
    lines += ["```", ""]
    return "\n".join(lines)


PAGES = {
    "reference/cli.md": cli_markdown,
    "reference/settings.md": settings_markdown,
    "reference/http-api.md": api_markdown,
}

if __name__ == "__main__":
    for make in [*PAGES.values(), schema_markdown]:
        print(make())
elif __name__ == "<run_path>":  # mkdocs-gen-files runs it so during the build
    import mkdocs_gen_files

    for page, make in PAGES.items():
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(make())
    with mkdocs_gen_files.open("store.md", "a") as out:  # the page as written, plus this
        out.write(schema_markdown())
