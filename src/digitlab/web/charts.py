"""Charts drawn on the server as inline SVG: no JavaScript, no chart library, the same
picture with one stored prediction or a million (they are drawn from aggregates).

Each chart scales to its container (a viewBox, width 100%), carries a title and a text
description for screen readers, and the pages put the numbers in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

# Okabe-Ito: told apart by people with any common colour-vision deficiency.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
LIVE, REFERENCE = "#0b5cad", "#9aa5b1"
W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 40


def _svg(body: str, title: str, description: str) -> Markup:
    ident = "c" + format(abs(hash((title, description))) % 10**8, "08d")
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img"'
        f' aria-labelledby="{ident}t {ident}d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}t">{escape(title)}</title>'
        f'<desc id="{ident}d">{escape(description)}</desc>{body}</svg>'
    )


def nice_top(value: float, ticks: int = 4) -> float:
    """The smallest round axis top (4 ticks of 1, 2, 2.5 or 5 times a power of ten) at
    or above `value`, so the tick labels read 0%, 5%, 10%... rather than 0%, 4%, 7%."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value / ticks))
    for step in (1, 2, 2.5, 5, 10):
        if step * power * ticks >= value:
            return step * power * ticks
    return 10 * power * ticks


def _axes(y_max: float, y_format: str, ticks: int = 4, y_min: float = 0.0) -> str:
    parts = []
    for i in range(ticks + 1):
        value = y_min + (y_max - y_min) * i / ticks
        y = TOP + (H - TOP - BOTTOM) * (1 - i / ticks)
        parts.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format(value, y_format))}</text>"
        )
    return "".join(parts)


def paired_bars(
    labels: Sequence[str],
    live: Sequence[float],
    reference: Sequence[float] | None,
    *,
    title: str,
    live_name: str = "live",
    reference_name: str = "reference",
) -> Markup:
    """Shares (0..1) per category: the live bar, and the reference bar beside it."""
    y_max = nice_top(max([*live, *(reference or []), 0.01]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / len(labels)
    bar = slot * (0.38 if reference else 0.7)
    parts = [_axes(y_max, ".0%")]
    for i, name in enumerate(labels):
        x0 = LEFT + i * slot + slot * 0.1
        pairs = [(live[i], LIVE, live_name)]
        if reference:
            pairs.append((reference[i], REFERENCE, reference_name))
        for j, (value, colour, series) in enumerate(pairs):
            h = plot_h * value / y_max
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}"'
                f' height="{h:.1f}" fill="{colour}"><title>{escape(series)} {escape(name)}:'
                f" {value:.1%}</title></rect>"
            )
        parts.append(
            f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{H - BOTTOM + 16}"'
            f' text-anchor="middle">{escape(name)}</text>'
        )
    parts.append(
        _legend([(live_name, LIVE)] + ([(reference_name, REFERENCE)] if reference else []))
    )
    description = "; ".join(
        f"{name}: {live_name} {live[i]:.1%}"
        + (f", {reference_name} {reference[i]:.1%}" if reference else "")
        for i, name in enumerate(labels)
    )
    return _svg("".join(parts), title, description)


def _legend(entries: list[tuple[str, str]]) -> str:
    parts, x = [], LEFT
    for name, colour in entries:
        parts.append(
            f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{H - 5}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return "".join(parts)


def lines(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str,
    y_format: str = ".2f",
) -> Markup:
    """One polyline per named series of (x, y) points, on shared axes (x: epochs)."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return _svg(
            f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no epochs recorded</text>',
            title,
            "no data",
        )
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    # Zoomed to the data: accuracies of 0.95-0.99 drawn from 0 would be one flat line.
    low, high = min(p[1] for p in points), max(p[1] for p in points)
    pad = (high - low) * 0.1 or max(abs(high) * 0.01, 0.01)
    y_min, y_top = max(0.0, low - pad) if low >= 0 else low - pad, high + pad
    span_x = (x_max - x_min) or 1.0
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def xy(x: float, y: float) -> str:
        px = LEFT + plot_w * (x - x_min) / span_x
        py = TOP + plot_h * (1 - (y - y_min) / (y_top - y_min))
        return f"{px:.1f},{py:.1f}"

    parts = [_axes(y_top, y_format, y_min=y_min)]
    for tick in sorted({int(p[0]) for p in points}):
        x = LEFT + plot_w * (tick - x_min) / span_x
        parts.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{tick}</text>')
    legend = []
    for k, (name, pts) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        dash = ' stroke-dasharray="6 3"' if k % 2 else ""
        coords = " ".join(xy(x, y) for x, y in pts)
        parts.append(
            f'<polyline class="series" data-series="{escape(name)}" points="{coords}"'
            f' fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        parts.extend(
            f'<circle cx="{xy(x, y).split(",")[0]}" cy="{xy(x, y).split(",")[1]}" r="3"'
            f' fill="{colour}"><title>{escape(name)}, epoch {x:g}: {y:{y_format}}</title></circle>'
            for x, y in pts
        )
        legend.append((name, colour))
    parts.append(_legend(legend))
    description = "; ".join(
        f"{name}: " + ", ".join(f"epoch {x:g} {y:{y_format}}" for x, y in pts)
        for name, pts in series
    )
    return _svg("".join(parts), title, description)
