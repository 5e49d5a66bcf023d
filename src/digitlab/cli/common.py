"""What every CLI module shares: the consoles, table and error printing, and the
decorator that turns known failures into one readable line and an exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Messages stay on one line however narrow the terminal; tables get room for ids.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
TABLE_WIDTH = 140

P = ParamSpec("P")
R = TypeVar("R")


class UsageError(Exception):
    """A command-line argument that makes no sense (exit 2)."""


def print_table(table: Table) -> None:
    # A console of its own: print(width=...) can only narrow the output, not widen it.
    Console(width=max(console.width, TABLE_WIDTH)).print(table)


def print_error(exc: BaseException | str) -> None:
    # escape: messages carry brackets ("float4[]", "[Errno 2]") that Rich would eat.
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Known failures become one readable line and a non-zero exit, not a traceback:
    2 for a bad argument, 1 for anything else we know how to explain."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # Imported here so `digitlab --help` does not load SQLAlchemy or Pillow.
        from digitlab.data import DataError
        from digitlab.inference.imagefiles import ImageFileError
        from digitlab.registry.versions import RegistryError
        from digitlab.store.db import StoreError

        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            print_error(exc)
            raise typer.Exit(2) from None
        except (DataError, RegistryError, StoreError, ImageFileError, ValueError, OSError) as exc:
            print_error(exc)
            raise typer.Exit(1) from None
        except ImportError as exc:
            print_error(
                f"{exc.name or exc} is not installed; "
                "training needs the [train] extra: pip install 'digitlab[train]'"
            )
            raise typer.Exit(1) from None

    return wrapper
