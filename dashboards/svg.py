"""Charts drawn on the server as SVG: no script and no CDN, and they print the same in the PDF."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["line_chart", "uptime_bar", "uptime_level"]


def _scale(values: Sequence[float], size: float, pad: float) -> tuple[float, float]:
    hi = max(values) if values else 1.0
    hi = hi if hi > 0 else 1.0
    return hi, (size - 2 * pad) / hi


def line_chart(points: Sequence[float | None], *, width: int = 720, height: int = 180, unit: str = "ms",
               label: str = "", y_label=lambda v: f"{v:.0f}") -> str:
    """A line over evenly spaced ``points`` (None leaves a gap), with its maximum marked on the y axis."""
    pad = 24.0
    known = [p for p in points if p is not None]
    hi, k = _scale(known, height, pad)
    step = (width - 2 * pad) / max(1, len(points) - 1)
    segments, current = [], []
    for i, p in enumerate(points):
        if p is None:
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{pad + i * step:.1f},{height - pad - p * k:.1f}")
    if current:
        segments.append(current)
    lines = "".join(f'<polyline fill="none" stroke="#2e90fa" stroke-width="1.5" points="{" ".join(s)}"/>'
                    for s in segments)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-label="{escape(label)}" direction="ltr">'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#d0d5dd"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{width - pad}" y2="{pad}" stroke="#f2f4f7"/>'
            f'<text x="{pad}" y="{pad - 6}" font-size="11" fill="#667085">{escape(y_label(hi))} {escape(unit)}</text>'
            f"{lines}</svg>")


def uptime_level(ratio: float | None) -> str:
    """The colour class of a day's availability: ``good`` (99.9 % and up), ``warn`` (99 %), ``bad``, or
    ``none`` when nothing of the day was known."""
    if ratio is None:
        return "none"
    return "good" if ratio >= 0.999 else "warn" if ratio >= 0.99 else "bad"


def uptime_bar(days: Sequence[tuple[str, float | None]], *, height: int = 28) -> str:
    """One slot per day, coloured by that day's uptime; each slot's title says the day and the figure."""
    width = max(1, len(days)) * 4
    colours = {"good": "#12b76a", "warn": "#f79009", "bad": "#f04438", "none": "#d0d5dd"}
    rects = "".join(f'<rect x="{i * 4}" y="0" width="3" height="{height}" rx="1" fill="{colours[uptime_level(r)]}" '
                    f'class="day {uptime_level(r)}"><title>{escape(title)}</title></rect>'
                    for i, (title, r) in enumerate(days))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="uptime-bar" viewBox="0 0 {width} {height}" '
            f'width="100%" height="{height}" preserveAspectRatio="none" direction="ltr">{rects}</svg>')
