"""The producers' and the partner's charts in a real browser: their axis labels readable on a phone.
A chart is drawn 640 units wide and scaled to its column, so 11 units came out at 6 to 7 CSS px at
390 px; the labels must be at least 11 CSS px there, whole (none cut off at the drawing's edge), and
no smaller than before at 1280 px. The site is `filmfund run` with demo donations."""
from __future__ import annotations

import pytest

from tests.screens import assert_fits
from tests.site.test_browser import (  # noqa: F401  (browser: the module's chromium fixture)
    _cli,
    browser,
    running_site,
    sign_in_producer_first_time,
)

pytestmark = pytest.mark.browser
PASSWORD = "charts-browser-password"

# Each axis label's rendered box (CSS px), and the page's left edge it must not cross.
LABELS = """(sel) => [...document.querySelectorAll(sel + ' text.axis-label')].map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, height: r.height, left: r.left, right: r.right,
            font: parseFloat(getComputedStyle(t).fontSize) * document.querySelector(sel).getBoundingClientRect().width
                  / document.querySelector(sel).viewBox.baseVal.width};
})"""


@pytest.fixture(autouse=True)
def _user_per_request():
    """No in-process app: the server is a subprocess."""


def _labels(page, base: str, path: str, chart: str, width: int) -> list[dict]:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(base + path)
    return page.evaluate(LABELS, chart)


def test_chart_labels_are_readable_on_a_phone_and_unchanged_on_a_desktop(browser, tmp_path_factory):  # noqa: F811
    instance = tmp_path_factory.mktemp("charts-browser")
    shots = tmp_path_factory.mktemp("charts-screenshots")
    with running_site(instance, "producer@filmfund.test", PASSWORD) as (base, env, log):
        _cli(env, "demo", "seed", "--donations", "60", "--donors", "30")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_producer_first_time(page, base, "producer@filmfund.test", PASSWORD)
        for path, chart in (("/admin/", "#raised-chart"), ("/admin/partner", "#share-chart")):
            phone = _labels(page, base, path, chart, 390)
            assert len(phone) >= 6, phone  # five y ticks and at least one date
            small = [(label["text"], round(label["font"], 1)) for label in phone if label["font"] < 11]
            assert small == [], f"{path}: labels under 11 CSS px at 390 px"
            assert all(label["height"] >= 11 for label in phone), phone
            assert all(label["left"] >= 0 and label["right"] <= 390 for label in phone), phone
            assert_fits(page, shots, f"charts{path.replace('/', '-')}390")
            desktop = _labels(page, base, path, chart, 1280)
            assert all(label["font"] >= 11 for label in desktop), desktop  # 11 units, as before, at 1 px or more
        page.close()
        assert [line for line in log.read_text().splitlines() if "Traceback" in line] == []
