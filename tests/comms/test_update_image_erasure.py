"""An update's image as mailed (its link names the recipient and never expires): once the donor is
erased it answers as a link that is not valid, though the erasure keeps what they hold, and a
donor who was not erased still loads theirs. Real mail server, queue, database (both) and storage."""
from __future__ import annotations

import re
from urllib.parse import urlparse

from filmfund import jobs
from filmfund.comms import updates
from filmfund.extensions import db
from filmfund.rewards import donor_data
from tests.comms.conftest import wait_for


def _image_links(smtp) -> dict[str, str]:
    """Each recipient's image link, as the mail's HTML gives it (a path with its query)."""
    links = {}
    for msg in smtp.messages():
        src = re.search(r'<img src="([^"]+)"', msg.get_body(("html",)).get_content()).group(1).replace("&amp;", "&")
        url = urlparse(src)
        links[msg["To"]] = f"{url.path}?{url.query}"
    return links


def test_an_erased_donors_mailed_image_link_is_not_valid(app, smtp, donor, image_asset):
    erased, kept = donor(1500, "erased@example.org"), donor(1500, "kept@example.org")
    asset = image_asset()
    smtp.envelopes.clear()  # the receipts
    update = updates.create_update(title="Stills", body=f"![Shenzhen](asset:{asset.public_id})",
                                   audience="updates-monthly")
    db.session.commit()
    updates.publish_update(update.id)
    db.session.commit()
    jobs.run_burst()
    wait_for(smtp, 2)
    links = _image_links(smtp)
    anon = app.test_client()
    for link in links.values():
        got = anon.get(link)
        assert got.status_code == 200 and got.data.startswith(b"\x89PNG")

    donor_data.erase_donor(erased)
    db.session.commit()

    got = anon.get(links["erased@example.org"])
    forged = anon.get(re.sub(r"t=[^&]+", "t=not-a-token", links["erased@example.org"]))
    token = re.search(r"t=([^&]+)", links["erased@example.org"]).group(1)
    assert got.status_code == 404 == forged.status_code  # as a link that is not valid (the page names its URL)
    assert got.get_data(as_text=True).replace(token, "T") == forged.get_data(as_text=True).replace("not-a-token", "T")
    assert anon.get(links["kept@example.org"]).status_code == 200
