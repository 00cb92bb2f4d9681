"""The review page's and the report's plots as inline SVG, drawn on the server.

No script and no external file: the strict CSP holds on the page, and the exported HTML report is
self-contained. Every text in the SVG is escaped; the numbers are also in the page as text.
"""

from __future__ import annotations

from html import escape
from typing import Any

INK, MUTED, BAR, MARK = "#1d2733", "#5d6b7a", "#00576b", "#b3261e"


def _number(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{round(value):,}".replace(",", " ")
    return f"{value:.1f}".replace(".", ",")


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px;height:auto" role="img" aria-label="{escape(title)}">'
    )


def _axis(x1: float, y: float, x2: float) -> str:
    return f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{MUTED}"/>'


def bars(values: list[tuple[str, float]], title: str, unit: str, width: int = 640, height: int = 200) -> str:
    """Monthly bars with the first, middle and last month named and the highest value on the axis."""
    if not values:
        return ""
    top = max((v for _, v in values), default=0.0) or 1.0
    left, right, upper, lower = 8.0, 8.0, 22.0, 24.0
    plot_w, plot_h = width - left - right, height - upper - lower
    step = plot_w / len(values)
    parts = [
        _open(width, height, title),
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="14" font-size="11" fill="{MUTED}">{escape(_number(top))} {escape(unit)}</text>',
        _axis(left, upper + plot_h, width - right),
    ]
    for i, (label, value) in enumerate(values):
        h = max(0.0, value / top * plot_h)
        x = left + i * step + step * 0.1
        parts.append(
            f'<rect x="{x:.1f}" y="{upper + plot_h - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
            f'fill="{BAR}"><title>{escape(label)}: {escape(_number(value))} {escape(unit)}</title></rect>'
        )
    for i in sorted({0, len(values) // 2, len(values) - 1}):
        x = left + i * step + step / 2
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" fill="{INK}">'
            f"{escape(values[i][0])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def distribution(
    peers: list[float], own: float | None, title: str, unit: str, width: int = 640, height: int = 200
) -> str:
    """A histogram of the peers' values with the flagged entity marked by a red line."""
    if not peers and own is None:
        return ""
    everything = [*peers, *([own] if own is not None else [])]
    low, high = min(0.0, min(everything)), max(everything)
    span = (high - low) or 1.0
    bins = 24
    counts = [0] * bins
    for value in peers:
        counts[min(bins - 1, int((value - low) / span * bins))] += 1
    top = max(counts) or 1
    left, right, upper, lower = 8.0, 8.0, 22.0, 24.0
    plot_w, plot_h = width - left - right, height - upper - lower
    step = plot_w / bins
    parts = [
        _open(width, height, title),
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="14" font-size="11" fill="{MUTED}">{top} kollegor</text>',
        _axis(left, upper + plot_h, width - right),
    ]
    for i, count in enumerate(counts):
        h = count / top * plot_h
        lo = low + span * i / bins
        parts.append(
            f'<rect x="{left + i * step + 1:.1f}" y="{upper + plot_h - h:.1f}" width="{step - 2:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{count} kollegor från {escape(_number(lo))} '
            f"{escape(unit)}</title></rect>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 6}" font-size="11" fill="{INK}">{escape(_number(low))}</text>'
        f'<text x="{width - right}" y="{height - 6}" font-size="11" text-anchor="end" fill="{INK}">'
        f"{escape(_number(high))} {escape(unit)}</text>"
    )
    if own is not None:
        x = left + (own - low) / span * plot_w
        x = min(max(x, left + 1), width - right - 1)
        anchor = "end" if x > width / 2 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(
            f'<line class="own" x1="{x:.1f}" y1="{upper - 4}" x2="{x:.1f}" y2="{upper + plot_h}" '
            f'stroke="{MARK}" stroke-width="3"><title>den flaggade: {escape(_number(own))} '
            f"{escape(unit)}</title></line>"
            f'<text x="{x + dx:.1f}" y="{upper + 8}" font-size="11" text-anchor="{anchor}" fill="{MARK}">'
            f"den flaggade: {escape(_number(own))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def for_flag(detail: dict[str, Any]) -> dict[str, str]:
    """The SVGs for one flag's stored detail: uttag and cost per month, and the peers."""
    series = detail.get("series") or []
    unit = str(detail.get("unit") or "uttag")
    return {
        "uttag": bars([(s["month"], float(s["n"])) for s in series], "Uttag per månad", "uttag"),
        "kostnad": bars([(s["month"], float(s["cost"])) for s in series], "Förmånskostnad per månad", "kr"),
        "kollegor": distribution(
            [float(v) for v in detail.get("peers") or []],
            float(detail["own"]) if detail.get("own") is not None else None,
            "Kollegornas fördelning",
            unit,
        ),
    }
