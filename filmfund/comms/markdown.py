"""Markdown of production updates to safe HTML (web archive and mail) and to plain text.

Two locks: markdown-it-py with raw HTML disabled (a `<script>` in the source comes out as
text), then nh3 (the Ammonia sanitiser) with a short allow-list of tags and URL schemes.
Images come only from the media library, written `![caption](asset:ASSET_ID)`; the caller
says what URL such an image gets (a page route, or a personal link in a mail). Any other
image source is dropped: an outside image would tell a third party who read the update.
A link to the site itself (`[your account](/account)`, `[below](#dinner)`) works from a page as
written; a mail has no page to be relative to, so its caller gives the address it is read from
(the update's page, on the public URL) and such links are made absolute there.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable
from urllib.parse import urljoin

from flask_babel import gettext as _

# markdown-it and nh3 are imported when an update is rendered, not when the app starts: most
# requests and jobs never render one, and the web process and the worker stay smaller.
if TYPE_CHECKING:
    from markdown_it import MarkdownIt

ASSET_RE = re.compile(r"^asset:([0-9a-f]{32})$")
ASSET_REF_RE = re.compile(r"\(asset:([0-9a-f]{32})\)")
TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "img", "figure", "figcaption"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
# A link with a scheme of its own (https:, mailto:, asset:) is left as written; the others (a path,
# a fragment: validateLink lets no other kind through) are the site's own.
_HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_SITE_LINK_IN_TEXT = re.compile(r"(\]\()([/#][^)\s]*)")


def image_words(caption: str) -> str:
    """A library image where it is not shown (a mail's plain text; an outside image, never
    loaded): its caption, said to be an image in the reader's language."""
    return _("[image: %(caption)s]", caption=caption) if caption else _("[image]")


def asset_ids(body: str) -> list[str]:
    """The media-library assets an update's Markdown shows, in order, without repeats."""
    return list(dict.fromkeys(ASSET_REF_RE.findall(body or "")))


def _parser(image_url: Callable[[str], str | None], base_url: str | None = None) -> MarkdownIt:
    import nh3  # deferred: see the imports
    from markdown_it import MarkdownIt  # deferred: see the imports

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = lambda url: bool(ASSET_RE.match(url)) or url.lower().startswith(("http://", "https://",
                                                                                     "mailto:", "/", "#"))
    default_image = md.renderer.rules.get("image")

    def image(renderer, tokens, idx, options, env):
        token = tokens[idx]
        match = ASSET_RE.match(token.attrGet("src") or "")
        url = image_url(match.group(1)) if match else None
        if url is None:  # not from the library: show its caption as text, never load it
            alt = md.renderer.renderInlineAsText(token.children or [], options, env)
            return f"<em>{image_words(nh3.clean_text(alt))}</em>" if alt else ""
        token.attrSet("src", url)
        return default_image(tokens, idx, options, env)

    md.add_render_rule("image", image)
    if base_url:
        def link_open(renderer, tokens, idx, options, env):
            token = tokens[idx]
            href = token.attrGet("href") or ""
            if not _HAS_SCHEME.match(href):
                token.attrSet("href", urljoin(base_url, href))
            return renderer.renderToken(tokens, idx, options, env)

        md.add_render_rule("link_open", link_open)
    return md


def to_html(body: str, image_url: Callable[[str], str | None], base_url: str | None = None) -> str:
    """Safe HTML of an update's Markdown. `base_url`: the absolute address the HTML is read from,
    for a mail (the update's page): the site's own links are made absolute on it."""
    import nh3  # deferred: see the imports

    raw = _parser(image_url, base_url).render(body or "")
    return nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def to_text(body: str, base_url: str | None = None) -> str:
    """The plain-text part of a mail: the Markdown itself reads well; library images become
    their captions (image_words, in the reader's language), and with `base_url` (as to_html's)
    the site's own links are absolute."""
    text = re.sub(r"!\[([^\]]*)\]\(asset:[0-9a-f]{32}\)", lambda m: image_words(m.group(1)), body or "")
    if base_url:
        text = _SITE_LINK_IN_TEXT.sub(lambda m: m.group(1) + urljoin(base_url, m.group(2)), text)
    return text.strip()
