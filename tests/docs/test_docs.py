"""The documentation site builds with `mkdocs build --strict`, and its generated references
are complete: every command of the Typer app, every field of Settings and every route of
the app appears in the built pages (walked from the code, compared with the HTML)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from fastapi import routing

from digitlab.app import create_app
from digitlab.cli.main import app as cli_app
from digitlab.config import Settings
from tests.conftest import ROOT

PAGES = [
    "getting-started", "concepts", "training", "experiments", "registry", "store", "api",
    "web", "feedback", "deploy/compose", "deploy/kubernetes", "operations", "benchmarks",
    "benchmarks-history", "examples", "development",
    "reference/cli", "reference/settings", "reference/http-api",
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def text(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text()


def section(markup: str, anchor: str) -> str:
    """The HTML from the heading with id `anchor` to the next heading of that level."""
    found = re.search(rf'<h([1-6]) id="{re.escape(anchor)}"', markup)
    assert found, f"no heading #{anchor}"
    end = re.compile(rf"<h[1-{found[1]}][ >]").search(markup, found.end())
    return markup[found.start() : end.start() if end else len(markup)]


def test_every_page_is_built(site: Path) -> None:
    missing = [name for name in PAGES if not (site / name / "index.html").is_file()]
    assert not missing


def test_every_command_and_option_is_in_the_cli_reference(site: Path) -> None:
    markup = page(site, "reference/cli")

    def walk(path: str, command: typer.core.TyperGroup | typer.core.TyperCommand) -> None:
        body = text(section(markup, path.replace(" ", "-")))
        assert path in body
        for param in command.params:
            option = param.param_type_name == "option"
            shown = param.opts[0] if option else (param.metavar or param.name).upper()
            assert shown in body, f"{path}: {shown} is not documented"
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                walk(f"{path} {name}", sub)

    walk("digitlab", typer.main.get_command(cli_app))


def test_every_setting_is_in_the_settings_reference(site: Path) -> None:
    rows = {
        cells[0]: cells
        for row in re.findall(r"<tr>(.*?)</tr>", page(site, "reference/settings"), re.S)
        if (cells := [text(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)])
    }
    prefix = Settings.model_config.get("env_prefix", "")
    for name, field in Settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        assert variable in rows, f"{variable} is not documented"
        assert field.description, f"Settings.{name} has no Field(description=...)"
        # Compared without spaces: the page renders `code` as a tag, not with backticks.
        shown, meant = rows[variable][3], field.description.replace("`", "")
        assert "".join(shown.split()) == "".join(meant.split()), variable


def test_every_route_is_in_the_http_api_reference(site: Path, tmp_path: Path) -> None:
    settings = Settings(
        model_dir=tmp_path / "models",
        database_url=f"sqlite:///{tmp_path / 'docs.db'}",
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    markup = page(site, "reference/http-api")
    body = text(markup)
    table = text(section(markup, "every-route"))
    # Newer FastAPI keeps included routers as lazy entries in app.routes; this flattens them.
    flatten = getattr(routing, "iter_route_contexts", None)
    routes = list(flatten(app.routes)) if flatten else app.routes
    assert len(routes) > 20
    for route in routes:
        path = route.path
        methods = sorted(getattr(route, "methods", None) or ["(mount)"])
        assert f"{path} {', '.join(methods)}" in table, f"{methods} {path} is not listed"
        if getattr(route, "include_in_schema", False):
            for method in methods:
                if method != "HEAD":
                    assert f"{method} {path}" in body, f"{method} {path} is not documented"
    app.state.service.engine.dispose()


def test_the_store_page_draws_every_table(site: Path) -> None:
    from digitlab.store.models import Base

    diagram = re.search(r'<pre class="mermaid"><code>(.*?)</code>', page(site, "store"), re.S)
    assert diagram and diagram[1].startswith("erDiagram")
    for table in Base.metadata.tables:
        assert re.search(rf"^\s*{table} \{{", html.unescape(diagram[1]), re.M), table


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme and "make test" in readme
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
