"""`media ingest --wait` as a copy script runs it, on both databases: on SQLite (the default) two
takes' jobs share the one write lock, and a job that held it while it waited for an encode slot
made the other's heartbeat and results fail ("database is locked"); a take that ends damaged
gives exit status 1; the summary's columns stay straight with Chinese titles."""
from __future__ import annotations

import re
import shutil


def test_ingest_wait_exits_1_when_a_take_is_damaged_and_keeps_its_table_straight(app, runner, clips, tmp_path):
    """A copy script learns from the exit status that a take is not intact (--wait knows how each
    one ended); the table's columns stay straight with a Chinese title, and "found as" is whole."""
    folder = tmp_path / "采访 第一天"
    folder.mkdir()
    shutil.copy(clips / "corrupt.MTS", folder / "corrupt.MTS")
    shutil.copy(clips / "small.mp4", folder / "李阿姨 采访.mp4")
    result = runner.invoke(args=["media", "ingest", "--wait", str(folder)])
    assert result.exit_code == 1, result.output
    assert "1 take(s) damaged or failed" in result.output and "database is locked" not in result.output
    assert "ran 2 job(s)" in result.output  # each take's one job, none failed and run again
    table = result.output[result.output.index("id  "):].splitlines()
    header, rule, *rows = [ln for ln in table[:4]]
    from filmfund.typed import columns

    # the column after the titles starts at the same place on every line, whatever their characters
    starts = {columns(header[:header.index("files")])}
    starts |= {columns(ln[:re.search(r"(?<=  )1(?=  )", ln).start()]) for ln in rows}
    assert len(starts) == 1 and "李阿姨 采访" in "".join(rows), table
    ok = runner.invoke(args=["media", "ingest", "--wait", str(folder / "李阿姨 采访.mp4")])
    assert ok.exit_code == 0 and "already ingested (same bytes)" in ok.output, ok.output  # intact: 0
