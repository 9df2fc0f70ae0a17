"""The campaign page as people read it, and as producers build it in the browser.

The page's parts (story, crew, risks, FAQ, stretch goals) are plain data in CampaignPagePart, each
text as {language: text}; the campaign file seeds them and a producer's edit (audited) makes a part
the browser's for good (loading the file again leaves it alone; see load_campaign). Budget lines
and artwork come from the file only: money planning, like the goal, stays in the file.
"""
from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, url_for

from filmfund.audit import record_audit
from filmfund.db import utcnow
from filmfund.errors import DomainError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import current_language
from filmfund.rewards import rules, snapshot
from filmfund.rewards.campaign_file import PAGE_FIELDS, PAGE_PARTS, TEXT_LANGUAGES, parse_page_part, read_campaign_file
from filmfund.rewards.models import Campaign, CampaignPagePart
from filmfund.money import cents_to_input, parse_dollars
from filmfund.typed import has_han


def page_language() -> str:
    """The language the page is shown in (the i18n component's choice: ?lang=, cookie, profile,
    Accept-Language)."""
    return current_language()


def text_in(text, lang: str) -> str:
    """A campaign text in `lang`, else in the other language: never a blank when one exists."""
    if not text:
        return ""
    if isinstance(text, str):
        return text
    return text.get(lang) or next((text[other] for other in TEXT_LANGUAGES if text.get(other)), "")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs; single line breaks inside one are the file's wrapping."""
    return [" ".join(line.strip() for line in p.splitlines()) if not _is_cjk(p) else "".join(
        line.strip() for line in p.splitlines()) for p in text.strip().split("\n\n") if p.strip()]


def _is_cjk(text: str) -> bool:
    # Chinese wraps without spaces: a line break inside a Chinese paragraph joins with nothing.
    return has_han(text[:200])


def progress(raised: int, goal: int, stretch_goals: list[dict]) -> dict:
    """The figures of the progress card: the true percentage (2158% is 2158%, the same as the
    dashboard's, rules.percent_of_goal), the bar's width capped at its end, and each stretch goal
    reached or not."""
    percent = rules.percent_of_goal(raised, goal)
    return {"percent": percent, "bar": min(percent, 100), "past_goal": raised >= goal > 0,
            "next_stretch": next((s for s in stretch_goals if s["amount"] > raised), None)}


def artwork_url(campaign, role: str) -> str | None:
    """The site path of one of the film's artwork files (banner, share picture, icon), versioned by
    the campaign's last change (it is cached for a month)."""
    path = (campaign.page.get("artwork") or {}).get(role)
    if not path:
        return None
    return url_for("site.artwork", name=path.rsplit("/", 1)[-1], v=campaign.updated_at.strftime("%Y%m%d%H%M%S"))


def artwork_file(campaign, name: str):
    """The path of an artwork file the campaign file names (by its file name), or None."""
    for path in (campaign.page.get("artwork") or {}).values():
        if path.rsplit("/", 1)[-1] == name:
            return Path(current_app.config["CAMPAIGN_FILE"]).parent / path
    return None


def brand(title: str) -> str:
    """The film's name for the top bar: its title up to a subtitle's colon."""
    return title.replace("：", ":").split(":", 1)[0].strip() or title  # a Chinese title's colon is full-width


def page_view(campaign, raised: int, lang: str) -> dict:
    """Everything the public page shows of the page's parts, in `lang` (with fallbacks)."""
    page = campaign.page
    stretch = [{"amount": s["amount"], "title": text_in(s["title"], lang),
                "description": text_in(s.get("description"), lang), "reached": raised >= s["amount"]}
               for s in page.get("stretch_goals") or []]
    share_planned = rules.share_due(campaign.goal, campaign.share_bps)
    return {
        "lang": lang,
        "brand": brand(campaign.title),
        "story": [{"heading": text_in(s["heading"], lang), "paragraphs": paragraphs(text_in(s["body"], lang))}
                  for s in page.get("story") or []],
        "crew": [{"name": m["name"], "role": text_in(m["role"], lang), "bio": text_in(m.get("bio"), lang)}
                 for m in page.get("crew") or []],
        "risks": paragraphs(text_in(page.get("risks"), lang)),
        "faq": [{"question": text_in(f["question"], lang), "answer": paragraphs(text_in(f["answer"], lang))}
                for f in page.get("faq") or []],
        "stretch_goals": stretch,
        "budget": [{"key": b.key, "title": text_in(b.title, lang), "planned": b.planned} for b in campaign.budget],
        "partner_share_planned": share_planned,
        "progress": progress(raised, campaign.goal, stretch),
        "poster_url": artwork_url(campaign, "poster"),
        "icon_url": artwork_url(campaign, "icon"),
    }


# ---------------------------------------------------------------- the producers' editor

def editor_parts(campaign_id: int) -> list[dict]:
    """Each part as the editor's form shows it: its rows (plus one blank row to add), who edited it."""
    rows = {p.part: p for p in db.session.scalars(
        sa.select(CampaignPagePart).where(CampaignPagePart.campaign_id == campaign_id))}
    out = []
    for part in PAGE_PARTS:
        row = rows.get(part)
        content = row.content if row is not None else ([] if part != "risks" else {})
        items = [content] if part == "risks" else list(content) + [{}]
        if part == "stretch_goals":
            items = [dict(it, amount=cents_to_input(it.get("amount"))) if it else it for it in items]
        out.append({"part": part, "items": items, "fields": _fields(part),
                    "edited_at": row.edited_at if row is not None else None, "list": part != "risks"})
    return out


def _fields(part: str) -> tuple:
    if part == "risks":
        return (("body", True, 10000, False),)
    return PAGE_FIELDS[part]


def form_to_part(part: str, form) -> list | dict:
    """The editor's form fields (`{part}-{row}-{field}-{lang}`, `{part}-{row}-{field}`) as the
    part's plain data, validated as the campaign file is. A row left all blank is dropped."""
    if part not in PAGE_PARTS:
        raise ValidationError("Unknown part of the page.", code="invalid_part")
    if form.get("part") != part:  # not the editor's form (an empty post must never blank a part)
        raise ValidationError("This form is incomplete: reload the page and try again.", code="invalid_form")
    if part == "risks":
        return parse_page_part(part, {lang: form.get(f"risks-0-body-{lang}", "") for lang in TEXT_LANGUAGES},
                               "Risks and challenges")
    rows, i = [], 0
    while f"{part}-{i}-present" in form and i < 100:
        item, blank = {}, True
        for name, localized, _max_len, _required in PAGE_FIELDS[part]:
            if localized:
                item[name] = {lang: form.get(f"{part}-{i}-{name}-{lang}", "") for lang in TEXT_LANGUAGES}
                blank = blank and not any(v.strip() for v in item[name].values())
            else:
                item[name] = form.get(f"{part}-{i}-{name}", "").strip()
                blank = blank and not item[name]
        i += 1
        if blank or form.get(f"{part}-{i - 1}-remove") == "1":
            continue
        if part == "stretch_goals":
            try:
                item["amount"] = parse_dollars(item["amount"])
            except DomainError as err:
                raise ValidationError(f"Stretch goal {len(rows) + 1}: {err.message}", code="invalid_amount") from None
        rows.append(item)
    try:
        return parse_page_part(part, rows, _PART_TITLES[part])
    except ValidationError as err:  # "Crew[0].role: ..." as a producer reads it: "Crew 1, role: ..."
        raise ValidationError(re.sub(r"\[(\d+)\]\.?", lambda m: f" {int(m.group(1)) + 1}, ", err.message),
                              code=err.code) from None


_PART_TITLES = {"story": "Story", "crew": "Crew", "risks": "Risks and challenges", "faq": "FAQ",
                "stretch_goals": "Stretch goals"}


def save_part(campaign_id: int, part: str, content, user) -> bool:
    """A producer's version of one part: stored, audited (before and after), and the page's cached
    snapshot rebuilt. False when nothing changed. The caller commits."""
    row = db.session.get(CampaignPagePart, (campaign_id, part))
    before = row.content if row is not None else None
    if before == content:
        return False
    if row is None:
        row = CampaignPagePart(campaign_id=campaign_id, part=part, content=content)
        db.session.add(row)
    row.content, row.edited_at, row.edited_by = content, utcnow(), getattr(user, "id", None)
    campaign = db.session.get(Campaign, campaign_id)
    campaign.updated_at = utcnow()  # every process rebuilds its snapshot (snapshot.py)
    record_audit("page.edit", f"campaign {campaign.slug} {part}", {"before": before, "after": content}, actor=user)
    return True


def reset_part(campaign_id: int, part: str, user) -> bool:
    """Hand a part back to the campaign file: its text is the file's again, and later loads of the
    file update it. Audited. False when the part already follows the file. The caller commits."""
    if part not in PAGE_PARTS:
        raise ValidationError("Unknown part of the page.", code="invalid_part")
    row = db.session.get(CampaignPagePart, (campaign_id, part))
    if row is None or row.edited_at is None:
        return False
    content = read_campaign_file(current_app.config["CAMPAIGN_FILE"]).page[part]
    before = row.content
    row.content, row.edited_at, row.edited_by = content, None, None
    campaign = db.session.get(Campaign, campaign_id)
    campaign.updated_at = utcnow()
    record_audit("page.reset", f"campaign {campaign.slug} {part}", {"before": before, "after": content}, actor=user)
    return True


def after_commit() -> None:
    snapshot.forget()
