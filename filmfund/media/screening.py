"""Early access (issue 15 item 4): the screening window of the campaign file, the donors' viewings,
the flags of a stream fetched from too many places, and the per-donor mark.

- The window: `[screening]` in the campaign file (`opens`, `closes`, ISO 8601 with a zone;
  `reward`, the early-access reward's key). Donors who hold that reward stream what is published
  to it, only while the window is open: streaming.check asks `window().is_open()` on every
  playlist and segment request, so the film stops at `closes` even mid-viewing. Nothing published
  to that reward is ever a download.
- Viewings: every playlist a donor fetches is logged (donor, asset, time, address). The address
  is personal data: only an HMAC of it is stored (distinct addresses can be counted, the address
  cannot be read back), and viewings older than MEDIA_VIEWING_DAYS are purged (on each new
  viewing, and by `filmfund media purge-viewings`). A donor whose streams come from more than
  MEDIA_FLAG_ADDRESSES distinct addresses within FLAG_WINDOW is flagged: the producer's
  screening page lists the flags (kept after the viewings are purged) and the counts.
- The mark: each screening segment is served with the donor's code (8 characters, an HMAC of
  the donor's id, never their email) drawn small and faint in the bottom-right corner by ffmpeg
  when the segment is first asked for, then kept in a cache folder per donor. `whois(code)` (the
  producer's page and `filmfund media whois CODE`) names the donor behind a code read off a
  leaked copy.
- Erasure (rewards.donor_data.erase_donor, through the `donor_erasing` signal): the donor's
  viewings and flags are deleted and their marked segments removed, and whois answers for an
  erased donor's code as for a code nobody has. Every link that fetches media without a session
  (a download, captions, a stream, an update's image) asks `erased` and is then refused as a link
  that is not valid, writing nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from filmfund.auth.models import User
from filmfund.db import on_commit, utcnow
from filmfund.extensions import db
from filmfund.media import ffmpeg
from filmfund.media.common import profiles, storage, work_dir
from filmfund.media.models import Asset, Publication, Stream, Viewing, ViewingFlag
from filmfund.rewards import privacy
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.campaign_file import parse_window
from filmfund.rewards.models import CampaignPagePart

FLAG_WINDOW = timedelta(minutes=10)
MARK_CACHE_HOURS = 48


# --- the window -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    opens: datetime
    closes: datetime
    reward: str

    def is_open(self, at: datetime | None = None) -> bool:
        at = at or utcnow()
        return self.opens <= at < self.closes

    def state(self, at: datetime | None = None) -> str:
        at = at or utcnow()
        return "before" if at < self.opens else "open" if at < self.closes else "after"


def window() -> Window | None:
    """The screening window of the current campaign (None: the file has no [screening])."""
    content = db.session.scalar(sa.select(CampaignPagePart.content).where(
        CampaignPagePart.campaign_id == current_campaign().id, CampaignPagePart.part == "screening"))
    if not content or not isinstance(content, dict) or not content.get("opens"):
        return None
    return Window(datetime.fromisoformat(content["opens"]), datetime.fromisoformat(content["closes"]),
                  content["reward"])


def set_window(opens: datetime, closes: datetime, reward: str) -> None:
    """Store a window as the campaign file would (tests, and a producer's CLI)."""
    cid = current_campaign().id
    content = parse_window({"opens": opens.isoformat(), "closes": closes.isoformat(), "reward": reward})
    row = db.session.get(CampaignPagePart, (cid, "screening"))
    if row is None:
        db.session.add(CampaignPagePart(campaign_id=cid, part="screening", content=content))
    else:
        row.content = content


def screening_assets(reward: str) -> list[Asset]:
    return list(db.session.scalars(sa.select(Asset).join(Publication).where(Publication.reward_key == reward)
                                   .order_by(Asset.title)))


# --- erasure --------------------------------------------------------------------------------------

def erased(user) -> bool:
    """Whether this account's donor was erased (rewards.privacy decides). A link made for them
    before (a download, captions, a stream or a viewing's token, an update's image) is refused as
    one that is not valid: nothing says why, and nothing is logged."""
    return user is not None and privacy.is_erased(privacy.profile_of(user.id))


def erase_viewings(user, **_kwargs) -> None:
    """donor_erasing: delete this donor's viewings (each with an address hash) and flags, and,
    once the caller commits, their marked segments (the folder named by their code)."""
    db.session.execute(sa.delete(Viewing).where(Viewing.user_id == user.id))
    db.session.execute(sa.delete(ViewingFlag).where(ViewingFlag.user_id == user.id))
    folder = _cache_dir() / mark_code(user.public_id)
    on_commit(db.session, lambda: shutil.rmtree(folder, ignore_errors=True))


# --- viewings and flags ---------------------------------------------------------------------------

def address_hash(address: str | None) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, b"viewing-address:" + (address or "").encode(), hashlib.sha256).hexdigest()[:32]


def log_viewing(user, asset: Asset, address: str | None, *, screening: bool) -> ViewingFlag | None:
    """Log one playlist fetch; flag the donor when their streams came from too many distinct
    addresses within FLAG_WINDOW. The caller commits."""
    now = utcnow()
    db.session.add(Viewing(user_id=user.id, asset_id=asset.id, at=now, address=address_hash(address),
                           screening=screening))
    db.session.flush()
    purge_viewings(now)
    since = now - FLAG_WINDOW
    distinct = db.session.scalar(sa.select(sa.func.count(sa.distinct(Viewing.address))).where(
        Viewing.user_id == user.id, Viewing.at >= since))
    if distinct <= current_app.config["MEDIA_FLAG_ADDRESSES"]:
        return None
    flag = db.session.scalar(sa.select(ViewingFlag).where(ViewingFlag.user_id == user.id,
                                                         ViewingFlag.asset_id == asset.id,
                                                         ViewingFlag.last_at >= since))
    if flag is None:
        flag = ViewingFlag(user_id=user.id, asset_id=asset.id, first_at=now, last_at=now, addresses=distinct)
        db.session.add(flag)
    flag.last_at, flag.addresses = now, max(flag.addresses or 0, distinct)
    return flag


def purge_viewings(now: datetime | None = None) -> int:
    """Delete viewings older than MEDIA_VIEWING_DAYS (the caller commits)."""
    cutoff = (now or utcnow()) - timedelta(days=int(current_app.config["MEDIA_VIEWING_DAYS"]))
    return db.session.execute(sa.delete(Viewing).where(Viewing.at < cutoff)).rowcount or 0


def report() -> dict:
    """The producer's view: counts per asset and the flags. No address is ever shown."""
    rows = db.session.execute(
        sa.select(Asset.public_id, Asset.title, sa.func.count(Viewing.id), sa.func.count(sa.distinct(Viewing.user_id)),
                  sa.func.max(Viewing.at))
        .join(Asset, Asset.id == Viewing.asset_id).group_by(Asset.public_id, Asset.title).order_by(Asset.title)).all()
    flags = db.session.execute(
        sa.select(ViewingFlag, User.email, Asset.title, Asset.public_id)
        .join(User, User.id == ViewingFlag.user_id).join(Asset, Asset.id == ViewingFlag.asset_id)
        .order_by(ViewingFlag.last_at.desc()).limit(200)).all()
    return {"assets": [{"asset_id": r[0], "title": r[1], "viewings": r[2], "donors": r[3], "last_at": r[4]}
                       for r in rows],
            "flags": [{"email": email, "code": mark_code_for(f.user_id), "title": title, "asset_id": aid,
                       "addresses": f.addresses, "first_at": f.first_at, "last_at": f.last_at}
                      for f, email, title, aid in flags],
            "days": int(current_app.config["MEDIA_VIEWING_DAYS"]),
            "limit": int(current_app.config["MEDIA_FLAG_ADDRESSES"])}


# --- the mark -------------------------------------------------------------------------------------

def mark_code(user_public_id: str) -> str:
    """The donor's code: 8 base32 characters of an HMAC of their id (not their email)."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    digest = hmac.new(key, b"screening-mark:" + user_public_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:8]


def mark_code_for(user_id: int) -> str:
    public_id = db.session.scalar(sa.select(User.public_id).where(User.id == user_id))
    return mark_code(public_id) if public_id else ""


def whois(code: str):
    """The account whose mark is this code (None: nobody's, or an erased donor's). Read off a
    leaked frame; O and 0, I and 1 are forgiven (base32 has no 0, 1, 8 or 9)."""
    code = (code or "").strip().upper().replace("0", "O").replace("1", "I").replace("8", "B")
    if len(code) != 8:
        return None
    for user in db.session.scalars(sa.select(User).order_by(User.id)):
        if hmac.compare_digest(mark_code(user.public_id), code):
            return None if erased(user) else user
    return None


def _cache_dir() -> Path:
    return work_dir() / "marks"


def marked_segment(user, stream: Stream, name: str, seg: dict) -> Path:
    """The segment with this donor's mark, made now if not cached (ffmpeg, a second or so for a
    4 s segment), cached per donor."""
    code = mark_code(user.public_id)
    folder = _cache_dir() / code
    path = folder / f"{stream.asset_id}-{seg['key'].replace('/', '_')}"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    profile = profiles()["hls"]
    variants = stream.index.get("variants") or []
    rung = next((r for r in (stream.profile or profile).get("ladder", [])
                 if variants and int(r["height"]) == variants[seg.get("variant", 0)]["height"]), None)
    rung = rung or {"bitrate": (stream.profile or profile)["ladder"][0]["bitrate"]}
    with storage().local_path(seg["key"], work_dir()) as src:
        tmp = folder / f".{os.getpid()}-{time.monotonic_ns()}.ts"
        try:
            ffmpeg.run(ffmpeg.mark_argv(str(src), str(tmp), code, rung, stream.profile or profile,
                                        profiles().get("mark", {})), timeout=120, slot=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def sweep_mark_cache(older_than_hours: float = MARK_CACHE_HOURS) -> int:
    """Remove marked segments not read for a while (the cache is made again when asked)."""
    cutoff = time.time() - older_than_hours * 3600
    removed = 0
    root = _cache_dir()
    if not root.is_dir():
        return 0
    for path in root.rglob("*.ts"):
        try:
            if path.stat().st_atime < cutoff and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
