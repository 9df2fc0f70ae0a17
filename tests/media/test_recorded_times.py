"""Camera times say which clock they are read on (issue 14 item 5): a clip recorded at 17:33 on a
camera set to +05:30 reads "5:33 PM (UTC+05:30)", never a bare "12:03"; without a zone from the
camera, the reader's zone, named."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from tests.media import camfiles


@pytest.fixture(scope="module")
def mts(tmp_path_factory):
    work = tmp_path_factory.mktemp("zones")
    india = camfiles.camcorder_mts(work / "india.MTS", work, zone=0x0B, date="20261203", time="173300")  # +05:30
    unknown = camfiles.camcorder_mts(work / "nozone.MTS", work, zone=0x80, date="20261203", time="090000")
    return india, unknown


def test_a_recording_reads_at_its_cameras_offset_and_otherwise_in_a_named_zone(app, client, mts, drain,
                                                                               producer, login_as):
    from filmfund.i18n import format_recorded, in_language
    from filmfund.media import services

    results = services.ingest_paths(list(mts))
    drain()
    india, unknown = (services.get_asset(r.asset.public_id) for r in results)
    assert india.recorded_at.replace(tzinfo=timezone.utc) == datetime(2026, 12, 3, 12, 3, tzinfo=timezone.utc)
    assert india.camera_zone == "+05:30" and unknown.camera_zone is None

    login_as(client, producer)
    page = client.get(f"/footage/{india.public_id}").get_data(as_text=True)
    facts = page.split('id="asset-recorded">')[1].split("</p>")[0].replace("\u202f", " ")
    assert "Recorded December 3, 2026, 5:33 PM (UTC+05:30)" in facts and "12:03" not in facts
    board = client.get("/footage/").get_data(as_text=True).replace("\u202f", " ")
    # The board's recorded times (the page itself also carries the time it was made, which can
    # be 12:03 UTC on the day the suite runs).
    recorded = re.findall(r'<span class="recorded" title="recorded">([^<]*)</span>', board)
    assert any("5:33 PM (UTC+05:30)" in r for r in recorded) and not any("12:03" in r for r in recorded), recorded
    page = client.get(f"/footage/{unknown.public_id}").get_data(as_text=True).replace("\u202f", " ")
    assert "Recorded December 3, 2026, 9:00 AM UTC" in page.split('id="asset-recorded">')[1].split("</p>")[0]

    with app.test_request_context(), in_language("zh-Hans"):
        assert format_recorded(india.recorded_at, "+05:30") == "2026年12月3日 17:33（UTC+05:30）"
        assert format_recorded(unknown.recorded_at, None) == "2026年12月3日 17:00（北京时间）"
    with app.test_request_context():
        assert format_recorded(india.recorded_at, "-03:30").replace("\u202f", " ").startswith("December 3, 2026, 8:33 AM (UTC-03:30)")
