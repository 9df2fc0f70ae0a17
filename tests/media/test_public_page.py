"""The trailer and the gallery (issue 12 item 2): a phone clip and a photo that both say where they
were filmed are published to the public (contract: {"reward": "public"}); the campaign page plays
the clip's clean web rendition with its poster (preload none) and shows the still in its gallery,
and every public file is free of location metadata. Unpublishing takes them down at once."""
from __future__ import annotations

import re

from filmfund.media import ffmpeg
from tests.media.located import assert_no_location, located_clip, located_jpeg


def test_published_to_the_public_the_page_plays_the_clean_trailer(app, client, tmp_path, drain, make_user,
                                                                   token_for, campaign):
    from filmfund.media import services
    from filmfund.media.models import AssetState

    folder = tmp_path / "phone"
    folder.mkdir()
    located_clip(folder / "trailer.mp4")
    located_jpeg(folder / "the search.jpg")
    results = services.ingest_paths([folder])
    drain()
    assets = {r.asset.title: services.get_asset(r.asset.public_id) for r in results}
    clip, photo = assets["trailer"], assets["the search"]
    assert clip.state == AssetState.READY and photo.state == AssetState.READY

    html = client.get("/").get_data(as_text=True)
    assert "<video" not in html and 'id="gallery"' not in html  # nothing is public yet
    producer = make_user(role="producer")
    for asset in (clip, photo):
        resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "public"},
                           headers=token_for(producer))
        assert resp.status_code == 201, resp.get_json()
    assert drain() == 1  # the clip's web rendition is made at its first publish

    html = client.get("/").get_data(as_text=True)
    # The trailer streams (HLS, js/player.js) with its clean MP4 as the fallback.
    video = re.search(r'<video id="trailer"([^>]*)>', html)
    assert video, html[:3000]
    attrs = video.group(1)
    src = re.search(r'data-fallback="([^"]+)"', attrs).group(1)
    stream = re.search(r'data-stream="([^"]+)"', attrs).group(1)
    assert stream.endswith("/hls/master.m3u8") and client.get(stream).status_code == 200
    assert "js/player.js" in html
    assert 'preload="none"' in attrs and "playsinline" in attrs and "controls" in attrs
    poster = re.search(r'poster="([^"]+)"', attrs).group(1)
    assert src.startswith("http://localhost/public/") and poster.startswith("http://localhost/public/")
    # the share cards show the trailer's poster, by an absolute URL
    assert f'<meta property="og:image" content="{poster}">' in html
    assert f'<meta name="twitter:image" content="{poster}">' in html

    data = client.get(src.removeprefix("http://localhost")).data
    probe_path = tmp_path / "public.mp4"
    probe_path.write_bytes(data)
    assert_no_location(data, ffmpeg.probe(str(probe_path)))
    ranged = client.get(src.removeprefix("http://localhost"), headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.data == data[:100]  # the player can seek
    assert "public" in ranged.headers["Cache-Control"]

    gallery = html[html.index('id="gallery"'):html.index("</ul>", html.index('id="gallery"'))]
    images = re.findall(r'(?:src|href)="(/public/[^"]+)"', gallery)
    assert len(images) == 2 and 'loading="lazy"' in gallery and 'alt="the search"' in gallery
    for url in images + [poster.removeprefix("http://localhost")]:
        resp = client.get(url)
        assert resp.status_code == 200 and resp.data[:2] == b"\xff\xd8"
        assert_no_location(resp.data)

    # taken down: the page no longer shows it and its files are gone
    resp = client.post(f"/api/v1/media/assets/{clip.public_id}/unpublish", json={"reward": "public"},
                       headers=token_for(producer))
    assert resp.status_code == 200
    assert client.get(src.removeprefix("http://localhost")).status_code == 404
    assert "<video" not in client.get("/").get_data(as_text=True)
    # a donor-only asset is never public
    resp = client.post(f"/api/v1/media/assets/{photo.public_id}/unpublish", json={"reward": "public"},
                       headers=token_for(producer))
    client.post(f"/api/v1/media/assets/{photo.public_id}/publish", json={"reward": "stills"},
                headers=token_for(producer))
    assert client.get(images[0]).status_code == 404
