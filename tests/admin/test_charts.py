"""The server-rendered SVG chart geometry."""
from datetime import date

import pytest

from filmfund.admin.charts import line_chart
from filmfund.admin.services import cumulative


@pytest.fixture(autouse=True)
def _user_per_request():
    """Pure functions: no app, so no run per database."""


def test_cumulative_running_totals():
    days = [(date(2026, 11, 1), 500), (date(2026, 11, 3), -200), (date(2026, 11, 4), 1000)]
    assert cumulative(days) == [(date(2026, 11, 1), 500), (date(2026, 11, 3), 300), (date(2026, 11, 4), 1300)]


def test_line_chart_scales_to_a_round_maximum_and_spans_the_days():
    chart = line_chart([(date(2026, 11, 1), 0), (date(2026, 11, 11), 150000)], goal=400000)
    assert not chart.empty
    assert [label for _, label in chart.y_ticks] == ["$0", "$1,000", "$2,000", "$3,000", "$4,000"]
    (x0, y0), (x1, y1) = [tuple(map(float, p.split(","))) for p in chart.points.split()]
    assert x0 == 64 and x1 == 640 - 16            # first and last day at the plot's edges
    assert y0 == 220 - 28 and y1 < y0              # money goes up
    assert chart.x_labels == [(64, "2026-11-01"), (624, "2026-11-11")]
    assert "$1,500.00" in chart.summary


def test_small_amounts_get_plain_ticks():
    chart = line_chart([(date(2026, 11, 1), 2400)])
    assert [label for _, label in chart.y_ticks] == ["$0", "$10", "$20", "$30", "$40"]


def test_empty_chart_says_so():
    chart = line_chart([])
    assert chart.empty and chart.points == "" and "nothing yet" in chart.summary


def test_the_share_charts_words_write_dates_as_its_reader_does(app):
    """Its text alternative (and caption) in words, not ISO dates: "2026-12- | 03" broke at its
    hyphen on a phone, and no Chinese sentence writes a date so."""
    from flask_babel import force_locale

    from filmfund.admin.charts import share_chart

    points = [(date(2026, 10, 30), 2000, 0), (date(2026, 12, 3), 205100, 1000)]
    with app.test_request_context("/"):
        assert share_chart(points).summary == "From October 30, 2026 to December 3, 2026: share due $2,051.00, paid $10.00."
        with force_locale("zh_Hans"):
            assert share_chart(points).summary == "2026年10月30日至2026年12月3日：应付份额 US$2,051.00，已拨款 US$10.00。"


def test_the_share_charts_last_day_is_as_wide_as_the_others(app):
    """Probe (partner, F2): the last day was drawn only as a stroke on the right edge, so the
    chart showed yesterday's "still owed" while the figures said the partner was paid in full."""
    from filmfund.admin.charts import share_chart

    points = [(date(2026, 12, 1), 8209, 0), (date(2026, 12, 2), 8209, 30000), (date(2026, 12, 3), 43753, 45000)]
    with app.test_request_context("/"):
        chart = share_chart(points)
    due = [tuple(map(float, p.split(","))) for p in chart.due.split()]
    paid = [tuple(map(float, p.split(","))) for p in chart.paid.split()]
    day_width = (640 - 64 - 16) / 3
    # Today's figures hold over a whole day's width before the plot's edge.
    assert due[-1][0] - due[-2][0] == pytest.approx(day_width, abs=0.1)
    assert paid[-1][0] - paid[-2][0] == pytest.approx(day_width, abs=0.1)
    assert paid[-1][1] < due[-1][1]  # the green line over the red one: paid more than due, today
