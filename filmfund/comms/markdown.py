"""Markdown of production updates to safe HTML (web archive and mail) and to plain text.

Two locks: markdown-it-py with raw HTML disabled (a `<script>` in the source comes out as
text), then nh3 (the Ammonia sanitiser) with a short allow-list of tags and URL schemes.
Images come only from the media library, written `![caption](asset:ASSET_ID)`; the caller
says what URL such an image gets (a page route, or a personal link in a mail). Any other
image source is dropped: an outside image would tell a third party who read the update.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

# markdown-it and nh3 are imported when an update is rendered, not when the app starts: most
# requests and jobs never render one, and the web process and the worker stay smaller.
if TYPE_CHECKING:
    from markdown_it import MarkdownIt

ASSET_RE = re.compile(r"^asset:([0-9a-f]{32})$")
ASSET_REF_RE = re.compile(r"\(asset:([0-9a-f]{32})\)")
TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "img", "figure", "figcaption"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}


def asset_ids(body: str) -> list[str]:
    """The media-library assets an update's Markdown shows, in order, without repeats."""
    return list(dict.fromkeys(ASSET_REF_RE.findall(body or "")))


def _parser(image_url: Callable[[str], str | None]) -> MarkdownIt:
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
            return f"<em>[image: {nh3.clean_text(alt)}]</em>" if alt else ""
        token.attrSet("src", url)
        return default_image(tokens, idx, options, env)

    md.add_render_rule("image", image)
    return md


def to_html(body: str, image_url: Callable[[str], str | None]) -> str:
    import nh3  # deferred: see the imports

    raw = _parser(image_url).render(body or "")
    return nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def to_text(body: str) -> str:
    """The plain-text part of a mail: the Markdown itself reads well; library images become
    their captions."""
    return re.sub(r"!\[([^\]]*)\]\(asset:[0-9a-f]{32}\)", lambda m: f"[image: {m.group(1)}]" if m.group(1)
                  else "[image]", body or "").strip()
