"""The footage board picks up new assets and state changes live (issue 6, item 7): the page polls
status.json, which answers the cards of assets added since its last poll (within the board's
filters) and the re-rendered card of each watched asset, so board.js swaps them in without a
reload."""
from __future__ import annotations

import re
from datetime import datetime


def test_status_json_answers_new_assets_and_changed_cards(app, client, make_user, login_as, ready_asset):
    from filmfund.extensions import db
    from filmfund.media.models import AssetState

    first = ready_asset("Day one")
    login_as(client, make_user(role="producer"))
    page = client.get("/footage/").get_data(as_text=True)
    since = re.search(r'data-since="([^"]+)"', page).group(1)
    assert datetime.fromisoformat(since).tzinfo is not None
    assert 'data-asset-id="%s"' % first.public_id in page

    # Nothing new yet but the asset already shown (the page skips ids it shows).
    data = client.get("/footage/status.json", query_string={"since": since, "ids": first.public_id}).get_json()
    assert [n["id"] for n in data["new"]] == []
    [item] = data["items"]
    assert item["state"] == "ready" and item["fixity"] == "ok" and "Day one" in item["html"]

    second = ready_asset("Day two, interview")
    data = client.get("/footage/status.json", query_string={"since": since, "ids": first.public_id}).get_json()
    [new] = data["new"]
    assert new["id"] == second.public_id and "Day two, interview" in new["html"]
    assert new["html"].lstrip().startswith("<li") and 'data-state="ready"' in new["html"]
    assert datetime.fromisoformat(data["since"]) >= datetime.fromisoformat(since)

    # The board's filters apply to what is added.
    filtered = client.get("/footage/status.json", query_string={"since": since, "q": "nothing like it"}).get_json()
    assert filtered["new"] == []

    # A state change is answered with the new card to swap in.
    first.state = AssetState.TRANSCODING
    db.session.commit()
    [item] = client.get("/footage/status.json", query_string={"since": since, "ids": first.public_id}).get_json()["items"]
    assert item["state"] == "transcoding" and 'data-state="transcoding"' in item["html"]

    assert client.get("/footage/status.json", query_string={"since": "yesterday"}).status_code == 400
    empty = client.get("/footage/status.json").get_json()  # no since: no listing of new assets
    assert empty["items"] == [] and empty["new"] == []


def test_board_script_polls_and_swaps_without_reloading(app, client):
    js = client.get("/footage/static/board.js").get_data(as_text=True)
    assert "location.reload" not in js  # never reloads the page
    assert "replaceWith" in js and "insertBefore" in js and "since" in js
