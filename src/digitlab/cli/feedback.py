"""The feedback loop's commands, registered on the `digitlab` app by cli/main.py:

digitlab feedback export DIR [--since DATE] [--until DATE] [--model VERSION] [--with-labelled]
                             [--include-anonymous]
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from digitlab.cli.common import UsageError, console, friendly_errors
from digitlab.config import get_settings

feedback_app = typer.Typer(help="People's corrections as training data.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the feedback commands to `app`, each behind `friendly_errors`."""
    app.add_typer(feedback_app, name="feedback")
    feedback_app.command("export")(friendly_errors(export))


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not an ISO date or time (2026-11-28 or 2026-11-28T14:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def export(
    out_dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="A new (or empty) folder to write.")
    ],
    since: Annotated[
        str | None, typer.Option(help="Feedback given from this time on (ISO, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Feedback given before this time (ISO, UTC).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Only corrections of this model version's predictions.")
    ] = None,
    with_labelled: Annotated[
        bool, typer.Option(help="Add inputs that came with a label and have no feedback.")
    ] = False,
    include_anonymous: Annotated[
        bool,
        typer.Option(help="Add anonymous corrections too (anyone's; not checked by a labeller)."),
    ] = False,
) -> None:
    """Write the corrections as MNIST-format files (train / heldout) and a manifest."""
    from digitlab.feedback.export import export as run_export
    from digitlab.store.db import open_engine

    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}")
    engine = open_engine(get_settings().database_url)
    result = run_export(
        engine,
        out_dir,
        since=start,
        until=end,
        model=model,
        with_labelled=with_labelled,
        include_anonymous=include_anonymous,
    )
    counts = result.counts
    corrections = len(result.feedback_ids)
    what = f"{counts['items']} images ({corrections} corrections"
    what += f", {counts['items'] - corrections} labelled)" if with_labelled else ")"
    console.print(
        f"exported {what}: {counts['train']} train, {counts['heldout']} heldout, to {result.path}"
        + ("; nothing to train on" if counts["items"] == 0 else "")
        + anonymous_note(result.anonymous),
        highlight=False,
        soft_wrap=True,
    )


def anonymous_note(anonymous: dict[str, int]) -> str:
    """What became of the anonymous corrections, for `export` and `retrain` ("" when
    there were none)."""
    if anonymous["left_out"]:
        return (
            f"; left out {anonymous['left_out']} anonymous corrections (labellers' only;"
            " --include-anonymous adds them)"
        )
    if anonymous["included"]:
        return f"; including {anonymous['included']} anonymous corrections (--include-anonymous)"
    return ""
