"""Server-rendered SVG charts: the geometry is computed here, the template only draws it.

Inline SVG with presentation attributes needs neither scripts nor style attributes, so it works
under the strict CSP and without JavaScript.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _

from filmfund.i18n import format_day, format_money


@dataclass
class LineChart:
    width: int
    height: int
    points: str = ""                 # "x,y x,y ..." for <polyline>
    area: str = ""                   # a closed path under the line
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    dots: list[tuple[float, float, str]] = field(default_factory=list)
    empty: bool = True
    summary: str = ""                # the text alternative


def _nice_max(value: int, intervals: int = 4) -> int:
    """A round top for the y axis: `intervals` equal steps of 1, 2, 2.5 or 5 times a power of ten
    (at least a dollar), so every tick is a plain figure."""
    need = max(-(-value // intervals), 100)  # ceiling division, in cents
    magnitude = 100
    while True:
        for step in (1, 2, 2.5, 5):
            if step * magnitude >= need:
                return int(step * magnitude) * intervals
        magnitude *= 10


def line_chart(series: list[tuple[date, int]], currency: str = "usd", *, goal: int | None = None,
               width: int = 640, height: int = 220, label: str = "Total") -> LineChart:
    chart = LineChart(width, height)
    left, right, top, bottom = 64, 16, 12, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    peak = max([v for _, v in series] + [goal or 0, 0])
    y_max = _nice_max(peak)
    chart.y_ticks = [(top + inner_h - inner_h * i / 4, format_money(y_max * i // 4, currency, whole=True))
                     for i in range(5)]
    if not series:
        chart.summary = f"{label}: nothing yet."
        return chart
    chart.empty = False
    first, last = series[0][0], series[-1][0]
    span = max((last - first).days, 1)

    def xy(day: date, value: int) -> tuple[float, float]:
        x = left + (inner_w * (day - first).days / span if len(series) > 1 else inner_w / 2)
        y = top + inner_h - inner_h * max(value, 0) / y_max
        return round(x, 1), round(y, 1)

    coords = [xy(d, v) for d, v in series]
    if len(coords) == 1:  # one day: a flat line across the chart reads better than a dot alone
        coords = [(left, coords[0][1]), (left + inner_w, coords[0][1])]
    chart.points = " ".join(f"{x},{y}" for x, y in coords)
    base = top + inner_h
    chart.area = (f"M{coords[0][0]},{base} " + " ".join(f"L{x},{y}" for x, y in coords)
                  + f" L{coords[-1][0]},{base} Z")
    chart.dots = [(*xy(d, v), f"{d.isoformat()}: {format_money(v, currency)}") for d, v in series][-60:]
    chart.x_labels = [(left, first.isoformat())] + ([(left + inner_w, last.isoformat())] if last != first else [])
    chart.summary = (f"{label} from {first.isoformat()} to {last.isoformat()}: "
                     f"{format_money(series[-1][1], currency)}.")
    return chart


@dataclass
class ShareChart:
    """The partner's chart: the share due and what was paid, both cumulative, on one axis."""

    width: int
    height: int
    due: str = ""                    # polyline points of the share due
    paid: str = ""                   # polyline points of what was paid (a step line)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True
    summary: str = ""


def share_chart(points: list[tuple[date, int, int]], currency: str = "usd", *, width: int = 640,
                height: int = 240) -> ShareChart:
    """`points`: (day, share due so far, paid so far), oldest first (rewards.statements.timeline)."""
    chart = ShareChart(width, height)
    left, right, top, bottom = 64, 16, 12, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    y_max = _nice_max(max([max(d, p) for _, d, p in points] + [0]))
    chart.y_ticks = [(top + inner_h - inner_h * i / 4, format_money(y_max * i // 4, currency, whole=True))
                     for i in range(5)]
    if not points:
        chart.summary = _("Nothing yet.")
        return chart
    chart.empty = False
    first, last = points[0][0], points[-1][0]
    # Each day is as wide as the others, the last one too: drawn only as a stroke at the right
    # edge, today's figures (the state the reader came for) went unseen behind yesterday's.
    span = (last - first).days + 1

    def x(day: date) -> float:
        return round(left + inner_w * (day - first).days / span, 1)

    def y(value: int) -> float:
        return round(top + inner_h - inner_h * max(value, 0) / y_max, 1)

    due, paid = [], []
    for day, d, p in points:
        if due:  # steps: a figure holds until the day it changes
            due.append(f"{x(day)},{due[-1].split(',')[1]}")
            paid.append(f"{x(day)},{paid[-1].split(',')[1]}")
        due.append(f"{x(day)},{y(d)}")
        paid.append(f"{x(day)},{y(p)}")
    end = left + inner_w
    due.append(f"{end},{due[-1].split(',')[1]}")
    paid.append(f"{end},{paid[-1].split(',')[1]}")
    chart.due, chart.paid = " ".join(due), " ".join(paid)
    chart.x_labels = [(left, first.isoformat())] + ([(end, last.isoformat())] if last != first else [])
    # In words, as the reader writes a date (2026年12月3日): the axis keeps the short ISO labels.
    chart.summary = _("From %(first)s to %(last)s: share due %(due)s, paid %(paid)s.", first=format_day(first),
                      last=format_day(last), due=format_money(points[-1][1], currency),
                      paid=format_money(points[-1][2], currency))
    return chart
