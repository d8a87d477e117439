"""Server-rendered SVG charts: pure functions from numbers to markup, no script, no library.

Each chart is an `<svg role="img">` whose `<title>` and `<desc>` name it and point to the table
the page shows beside it (the figures themselves, for screen readers and for print). The caller
decides what a bar shows: a breakdown's small counts arrive as value 0 with the text "<5", so
neither the bar's length nor its label gives the number away.

Charts are drawn in a narrow coordinate system (WIDTH units) and scale with their container:
at 375 px (a phone) the text stays about 12 px; the page caps their width on a desktop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 360
FONT = 12
INK = "#1f2933"
MUTED = "#5b6776"
BAR = "#1a5c96"
DOWN = "#a33a2b"
GRID = "#d5dce4"


@dataclass(frozen=True)
class Bar:
    """One bar: its LABEL, the VALUE that sets its length, and the TEXT shown at its end."""

    label: str
    value: int
    text: str
    hint: str = ""  # a longer label, shown as a tooltip


def _svg(chart_id: str, title: str, desc: str, width: int, height: int, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {width} {height}" width="100%" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d" font-size="{FONT}" '
            f'font-family="\'Segoe UI\', Helvetica, Arial, sans-serif">'
            f'<title id="{chart_id}-t">{escape(title)}</title>'
            f'<desc id="{chart_id}-d">{escape(desc)}</desc>{body}</svg>')


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars - 1].rstrip() + "…"


def bars(chart_id: str, title: str, desc: str, data: Sequence[Bar], *,
         scale_max: int | None = None) -> str:
    """Horizontal bars, each with its label on a line above it: long labels fit a phone."""
    row, top = 38, 4
    height = top + row * max(len(data), 1)
    room = WIDTH - 44  # space for the value after the longest bar
    top_value = max([scale_max or 0] + [b.value for b in data]) or 1
    parts = []
    for i, bar in enumerate(data):
        y = top + i * row
        length = round(room * bar.value / top_value) if bar.value > 0 else 0
        parts.append(
            f'<g><title>{escape(bar.hint or bar.label)}: {escape(bar.text)}</title>'
            f'<text x="0" y="{y + 12}" fill="{INK}" font-size="{FONT + 1}">'
            f'{escape(_shorten(bar.label, 48))}</text>'
            f'<rect x="0" y="{y + 17}" width="{max(length, 1) if bar.value else 0}" '
            f'height="14" fill="{BAR}"/>'
            f'<text x="{length + 6}" y="{y + 29}" fill="{INK}" font-weight="bold">'
            f'{escape(bar.text)}</text></g>')
    return _svg(chart_id, title, desc, WIDTH, height, "".join(parts))


def columns(chart_id: str, title: str, desc: str, data: Sequence[Bar], *,
            scale_max: int | None = None, width: int = WIDTH, height: int = 170) -> str:
    """Vertical columns with short labels (months) under them and the value on top."""
    left, bottom, top = 4, 20, 18
    plot = height - bottom - top
    step = (width - left) / max(len(data), 1)
    top_value = max([scale_max or 0] + [b.value for b in data]) or 1
    parts = [f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
             f'stroke="{GRID}"/>']
    for i, bar in enumerate(data):
        x = left + i * step
        size = round(plot * bar.value / top_value) if bar.value > 0 else 0
        y = height - bottom - size
        mid = x + step / 2
        parts.append(
            f'<g><title>{escape(bar.hint or bar.label)}: {escape(bar.text)}</title>'
            f'<rect x="{x + step * 0.15:.1f}" y="{y}" width="{step * 0.7:.1f}" height="{size}" '
            f'fill="{BAR}"/>'
            f'<text x="{mid:.1f}" y="{y - 4}" text-anchor="middle" fill="{INK}" '
            f'font-size="{FONT - 1}">{escape(bar.text)}</text>'
            f'<text x="{mid:.1f}" y="{height - 5}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="{FONT - 1}">{escape(bar.label)}</text></g>')
    return _svg(chart_id, title, desc, width, height, "".join(parts))


def diverging(chart_id: str, title: str, desc: str,
              data: Sequence[tuple[str, int, int]], *, up_label: str, down_label: str) -> str:
    """Per period, a column up (those who came) and one down (those who left), and a legend."""
    width, height, legend = WIDTH, 190, 18
    left, bottom = 4, 18
    middle = legend + (height - legend - bottom) / 2
    half = (height - legend - bottom) / 2 - 14
    step = (width - left) / max(len(data), 1)
    top_value = max([1] + [max(u, d) for _l, u, d in data])
    parts = [
        f'<rect x="0" y="2" width="10" height="10" fill="{BAR}"/>'
        f'<text x="14" y="11" fill="{INK}">{escape(up_label)}</text>'
        f'<rect x="{width / 2:.0f}" y="2" width="10" height="10" fill="{DOWN}"/>'
        f'<text x="{width / 2 + 14:.0f}" y="11" fill="{INK}">{escape(down_label)}</text>',
        f'<line x1="0" y1="{middle:.1f}" x2="{width}" y2="{middle:.1f}" stroke="{GRID}"/>']
    for i, (label, up, down) in enumerate(data):
        x = left + i * step
        mid = x + step / 2
        h_up, h_down = half * up / top_value, half * down / top_value
        parts.append(
            f'<g><title>{escape(label)}: +{up} / −{down}</title>'
            f'<rect x="{x + step * 0.2:.1f}" y="{middle - h_up:.1f}" width="{step * 0.6:.1f}" '
            f'height="{h_up:.1f}" fill="{BAR}"/>'
            f'<rect x="{x + step * 0.2:.1f}" y="{middle:.1f}" width="{step * 0.6:.1f}" '
            f'height="{h_down:.1f}" fill="{DOWN}"/>'
            f'<text x="{mid:.1f}" y="{middle - h_up - 3:.1f}" text-anchor="middle" '
            f'font-size="{FONT - 2}" fill="{INK}">{up}</text>'
            f'<text x="{mid:.1f}" y="{middle + h_down + 11:.1f}" text-anchor="middle" '
            f'font-size="{FONT - 2}" fill="{INK}">{down}</text>'
            f'<text x="{mid:.1f}" y="{height - 4}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="{FONT - 1}">{escape(label)}</text></g>')
    return _svg(chart_id, title, desc, width, height, "".join(parts))
