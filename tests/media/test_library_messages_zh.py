"""The library's refusals read in the donor's language (zh-Hans here), as the rest of its pages do."""
from __future__ import annotations

ZH = {"Accept-Language": "zh-Hans"}


def _message(resp) -> str:
    return resp.get_json()["error"]["message"] if resp.is_json else resp.get_data(as_text=True)


def test_the_library_says_no_in_chinese(app, client, campaign, make_user, token_for, ready_asset, login_as):
    clip = ready_asset("Clip one")
    producer = make_user("p@filmfund.test", "producer")
    assert client.post(f"/api/v1/media/assets/{clip.public_id}/publish", json={"reward": "video-clips"},
                       headers=token_for(producer)).status_code == 201

    donor = login_as(app.test_client(), make_user("d@example.org", "donor"))  # holds no reward
    for url in (f"/library/{clip.public_id}", f"/library/{'0' * 32}", f"/library/{clip.public_id}/poster"):
        resp = donor.get(url, headers=ZH)
        assert resp.status_code == 404 and "“您的下载”里没有这一项。" in _message(resp), url

    crew = login_as(app.test_client(), producer)  # sees what donors get: the item, but not these
    for url, said in ((f"/library/{clip.public_id}/poster", "这一项没有封面图。"),
                      (f"/library/{clip.public_id}/captions/fr.vtt", "没有找到这份字幕。"),
                      (f"/library/{clip.public_id}/captions/fr/burned.mp4", "没有找到这个版本。")):
        resp = crew.get(url, headers=ZH)
        assert resp.status_code == 404 and said in _message(resp), (url, _message(resp)[:300])
        assert "No such" not in _message(resp) and "has no" not in _message(resp), url
