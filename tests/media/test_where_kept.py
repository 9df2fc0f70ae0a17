"""The crew's "where is this clip?": each file of an asset says where it was found (the card's
path) and where it is kept (the stored original), on the asset page and in the API, the second
copy too when one is kept; an upload through the site says so."""
from __future__ import annotations

from tests.media import camfiles


def test_each_file_says_where_it_was_found_and_where_it_is_kept(app, clips, tmp_path, runner, drain, client,
                                                                login_as, producer, token_for):
    from filmfund.media import services

    good = (clips / "good_1080i.MTS").read_bytes()
    bdmv = camfiles.card(tmp_path / "采访 CARD", {"00000": good}, [("00000", 1)])
    assert runner.invoke(args=["media", "ingest", str(tmp_path / "采访 CARD")]).exit_code == 0
    drain()
    [asset] = services.find_assets()
    found = str(bdmv / "STREAM" / "00000.MTS")
    stored = services.storage().root / asset.sources[0].storage_key
    assert stored.is_file()  # the place it names holds the file

    login_as(client, producer)
    [source] = client.get("/api/v1/media/assets", headers=token_for(producer)).get_json()["items"][0]["sources"]
    assert (source["found_at"], source["stored_at"], source["second_copy_at"]) == (found, str(stored), None)
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert f'<code class="found-at">{found}</code>' in page and f'<code class="stored-at">{stored}</code>' in page
