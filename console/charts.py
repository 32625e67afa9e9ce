"""Charts as plain SVG drawn on the server: no chart library, nothing to load, the same picture in every
browser and in the screenshots. Labels are escaped; sizes are in SVG user units and scale with the page."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BAR = "#2f6db5"
TRACK = "#e4e8ee"
TEXT = "#1d2733"


def horizontal_bars(items: Sequence[tuple[str, float]], *, width: int = 520, row: int = 26,
                    label_width: int = 150, empty: str = "—") -> Markup:
    """One bar per (label, value), longest first as given, with the value written after the bar."""
    if not items:
        return Markup(f'<p class="muted">{escape(empty)}</p>')
    top = max(value for _, value in items) or 1
    bar_space = width - label_width - 60
    height = row * len(items)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for position, (label, value) in enumerate(items):
        y = position * row
        length = bar_space * value / top
        parts.append(
            f'<text x="{label_width - 8}" y="{y + row * 0.65:.1f}" text-anchor="end" fill="{TEXT}" '
            f'font-size="13">{escape(str(label))}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{bar_space}" height="{row - 8}" fill="{TRACK}" rx="3"/>'
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" fill="{BAR}" rx="3">'
            f'<title>{escape(str(label))}: {value:g}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + row * 0.65:.1f}" fill="{TEXT}" '
            f'font-size="12">{value:g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(values: Sequence[float], labels: Sequence[str], *, width: int = 720, height: int = 200,
            every: int = 3) -> Markup:
    """Vertical columns (e.g. calls in each hour of the day); every `every`-th label is written below."""
    top = max(values, default=0) or 1
    plot = height - 24
    step = width / max(len(values), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="0" y1="{plot}" x2="{width}" y2="{plot}" stroke="{TRACK}"/>']
    for position, (value, label) in enumerate(zip(values, labels)):
        bar_height = plot * value / top
        x = position * step
        parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{plot - bar_height:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{bar_height:.1f}" fill="{BAR}" rx="2"><title>{escape(label)}: {value:g}</title></rect>')
        if value:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{plot - bar_height - 4:.1f}" text-anchor="middle" '
                         f'font-size="11" fill="{TEXT}">{value:g}</text>')
        if position % every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="11" '
                         f'fill="{TEXT}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def rate_ring(rate: float | None, *, size: int = 120) -> Markup:
    """A ring filled to `rate` (0..1) with the percentage in the middle; '—' when there is no rate."""
    radius = size / 2 - 10
    circumference = 2 * 3.141592653589793 * radius
    filled = 0.0 if rate is None else max(0.0, min(rate, 1.0)) * circumference
    text = "—" if rate is None else f"{rate * 100:.1f}%"
    centre = size / 2
    return Markup(
        f'<svg class="ring" viewBox="0 0 {size} {size}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f'<circle cx="{centre}" cy="{centre}" r="{radius:.1f}" fill="none" stroke="{TRACK}" stroke-width="12"/>'
        f'<circle cx="{centre}" cy="{centre}" r="{radius:.1f}" fill="none" stroke="{BAR}" stroke-width="12" '
        f'stroke-dasharray="{filled:.2f} {circumference:.2f}" transform="rotate(-90 {centre} {centre})"/>'
        f'<text x="{centre}" y="{centre + 6}" text-anchor="middle" font-size="18" fill="{TEXT}">{text}</text></svg>')
