"""Markdown from issue and item files -> sanitised HTML, and the same source -> plain text.

Raw HTML in the source is never passed on: markdown-it recognises it only so that it can be
dropped (rather than shown as escaped tag soup), links and images are kept only with an https,
http or mailto URL, and nh3 (ammonia) cleans the result against an allow-list as the last guard.
The plain-text twin is rendered from the same token stream, not scraped from the HTML.
A single line break is a line break in both (markdown-it's "breaks"), not a space.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

SAFE_SCHEMES = frozenset({"https", "http", "mailto"})
_NOT_IN_URLS = frozenset('"<>\\^`{|}')
# A host name (letters of any script, digits, "-", "."), an IPv4 or a bracketed IPv6 address.
_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?|[0-9a-f:.]+")
_TAGS = {
    "p", "br", "strong", "em", "b", "i", "s", "del", "a", "ul", "ol", "li", "blockquote",
    "h2", "h3", "h4", "code", "pre", "hr", "img", "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
WRAP = 72
# The email's text column: 600 px less 24 px padding on each side. An image never gets a width
# attribute above it, so that Outlook on Windows (which ignores max-width) keeps it in the column.
COLUMN_WIDTH = 552
ImageSize = Callable[[str], "tuple[int, int] | None"]


def safe_url(url: str | None) -> bool:
    """True for an absolute https, http or mailto URL: no spaces or control characters, none of
    the characters RFC 3986 excludes from URLs (`"<>\\^`{|}`, which only get there by mistake
    or by an attack such as `"><script>`), and for http(s) a host name and a numeric port.
    Non-ASCII letters are allowed (an IRI, as browsers show addresses)."""
    if not url or any(ord(c) < 33 or ord(c) == 127 or c in _NOT_IN_URLS or not c.isprintable()
                      for c in url):
        return False
    try:
        parts = urlsplit(url)
        port_ok = parts.port != 0  # .port raises ValueError for a port that is not a number
    except ValueError:
        return False
    if parts.scheme.lower() not in SAFE_SCHEMES:
        return False
    if parts.scheme.lower() == "mailto":
        return bool(parts.path)
    return port_ok and bool(parts.hostname) and _HOST.fullmatch(parts.hostname) is not None


@dataclass(frozen=True)
class Converted:
    """One Markdown text as sanitised HTML and as plain text, with what was left out of it."""

    html: str
    text: str
    raw_html_dropped: int
    unsafe_links_dropped: int
    links: tuple[str, ...]
    images_without_alt: int
    images: tuple[tuple[str, str], ...] = ()  # (src, alt) of each image kept


def _parser() -> MarkdownIt:
    # "html" on only to *recognise* raw HTML, whose tokens are then removed (see _strip_raw_html);
    # every link is parsed so that a disallowed one can be dropped to its text, not shown as source.
    # "breaks": a single line break is kept (a signature "Vänliga hälsningar / Karin" stays two
    # lines), as people who write in a text box, not a Markdown editor, expect.
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False,
                                   "breaks": True})
    md.enable(["strikethrough", "table"])
    md.validateLink = lambda url: True
    return md


_MD = _parser()


_CONTENT_TAGS = ("script", "style", "iframe", "object", "embed", "noscript", "textarea",
                 "template", "svg", "math", "title", "select")
_OPENS = re.compile(r"<\s*(" + "|".join(_CONTENT_TAGS) + r")\b", re.IGNORECASE)
_CLOSES = re.compile(r"<\s*/\s*(" + "|".join(_CONTENT_TAGS) + r")\b", re.IGNORECASE)


def _strip_raw_html(tokens: list[Token]) -> int:
    """Remove raw HTML tokens in place, blocks and inline, and what an inline <script>, <style>,
    <iframe>... encloses; returns how many raw HTML pieces were removed."""
    dropped = 0
    kept = []
    for tok in tokens:
        if tok.type == "html_block":
            dropped += 1
            continue
        if tok.children:
            children, inside = [], ""
            for child in tok.children:
                if child.type != "html_inline":
                    if not inside:
                        children.append(child)
                    continue
                dropped += 1
                if not inside and (match := _OPENS.match(child.content)):
                    if not child.content.rstrip().endswith("/>"):
                        inside = match.group(1).lower()
                elif inside and (match := _CLOSES.match(child.content)):
                    inside = "" if match.group(1).lower() == inside else inside
            tok.children = children
        kept.append(tok)
    tokens[:] = kept
    return dropped


def _demote_headings(tokens: list[Token]) -> None:
    """# and ## in an item become h3, the rest h4: the email's own headings stay on top."""
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = "h3" if tok.tag in ("h1", "h2") else "h4"


def _drop_unsafe_links(tokens: list[Token]) -> int:
    """Links and images whose URL is not https/http/mailto lose the URL (and the element)."""
    dropped = 0
    for tok in tokens:
        if not tok.children:
            continue
        children: list[Token] = []
        in_dropped_link = ""  # the markup of the dropped link we are in; links do not nest
        for child in tok.children:
            if child.type == "link_open" and not safe_url(str(child.attrGet("href") or "")):
                dropped += 1
                in_dropped_link = child.markup or "link"
                continue
            if child.type == "link_close" and in_dropped_link:
                in_dropped_link = ""
                continue
            if in_dropped_link == "autolink":  # its text is the URL itself: drop it too
                continue
            if child.type == "image" and not safe_url(str(child.attrGet("src") or "")):
                dropped += 1
                alt = "".join(c.content for c in child.children or [])
                if alt:
                    children.append(Token("text", "", 0, content=alt))
                continue
            children.append(child)
        tok.children = children
    return dropped


def _size_images(tokens: list[Token], image_size: ImageSize | None) -> None:
    """Give every image a width (and, when known, height) attribute within COLUMN_WIDTH: its
    own size scaled down to the column, or the column's width when its size is unknown."""
    for tok in tokens:
        for child in tok.children or []:
            if child.type != "image":
                continue
            known = image_size(str(child.attrGet("src") or "")) if image_size else None
            if known and known[0] > 0:
                width = min(known[0], COLUMN_WIDTH)
                child.attrSet("width", str(width))
                child.attrSet("height", str(max(1, round(known[1] * width / known[0]))))
            else:
                child.attrSet("width", str(COLUMN_WIDTH))


def _clean(html: str) -> str:
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=set(SAFE_SCHEMES),
                     strip_comments=True, link_rel="noopener")


def convert(source: str, *, image_size: ImageSize | None = None) -> Converted:
    """Markdown SOURCE as sanitised HTML and plain text.

    IMAGE_SIZE: (width, height) of an image by its URL, or None when unknown (see _size_images).
    """
    env: dict = {}
    tokens = _MD.parse(source or "", env)
    raw = _strip_raw_html(tokens)
    unsafe = _drop_unsafe_links(tokens)
    _demote_headings(tokens)
    _size_images(tokens, image_size)
    html = _clean(_MD.renderer.render(tokens, _MD.options, env))
    links = tuple(str(c.attrGet("href")) for t in tokens for c in (t.children or [])
                  if c.type == "link_open")
    images = tuple((str(c.attrGet("src")), "".join(x.content for x in c.children or []).strip())
                   for t in tokens for c in (t.children or []) if c.type == "image")
    no_alt = sum(1 for _src, alt in images if not alt)
    return Converted(html=html, text=_to_text(tokens), raw_html_dropped=raw,
                     unsafe_links_dropped=unsafe, links=links, images_without_alt=no_alt,
                     images=images)


def to_html(source: str) -> str:
    return convert(source).html


def to_text(source: str) -> str:
    return convert(source).text


# --- plain text -------------------------------------------------------------------------------

def _inline_text(children: list[Token]) -> str:
    out: list[str] = []
    hrefs: list[str] = []
    start: list[int] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif child.type == "link_open":
            hrefs.append(str(child.attrGet("href") or ""))
            start.append(len(out))
        elif child.type == "link_close" and hrefs:
            href = hrefs.pop()
            label = "".join(out[start.pop():]).strip()
            target = href.removeprefix("mailto:") if href.startswith("mailto:") else href
            if target and target != label:
                out.append(f" ({target})")
        elif child.type == "image":
            alt = "".join(c.content for c in child.children or []).strip()
            src = str(child.attrGet("src") or "")
            out.append(f"[Bild: {alt}] ({src})" if alt else f"[Bild] ({src})")
    return "".join(out)


def _wrap(text: str, first: str = "", rest: str = "") -> str:
    lines = []
    for para_line in text.split("\n"):
        wrapped = textwrap.wrap(para_line, WRAP, initial_indent=first, subsequent_indent=rest,
                                break_long_words=False, break_on_hyphens=False)
        lines.extend(wrapped or [first.rstrip()])
        first = rest
    return "\n".join(lines)


def _to_text(tokens: list[Token]) -> str:
    blocks: list[tuple[str, int | None]] = []  # (text, the list it is an item of)
    lists: list[list[int]] = []  # stack of [ordered?, counter, id]
    quote = 0
    item_prefix: str | None = None
    for tok in tokens:
        if tok.type == "bullet_list_open":
            lists.append([0, 0, id(tok)])
        elif tok.type == "ordered_list_open":
            lists.append([1, int(tok.attrGet("start") or 1) - 1, id(tok)])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            kind = lists[-1]
            kind[1] += 1
            item_prefix = "  " * (len(lists) - 1) + (f"{kind[1]}. " if kind[0] else "- ")
        elif tok.type == "blockquote_open":
            quote += 1
        elif tok.type == "blockquote_close":
            quote -= 1
        elif tok.type == "hr":
            blocks.append(("-" * 20, None))
        elif tok.type in ("fence", "code_block"):
            blocks.append((tok.content.rstrip("\n"), None))
        elif tok.type == "inline":
            text = re.sub(r"[ \t]+", " ", _inline_text(tok.children or [])).strip()
            if not text:
                continue
            prefix = "> " * quote
            if item_prefix is not None:
                pad = " " * len(item_prefix)
                blocks.append((_wrap(text, prefix + item_prefix, prefix + pad), lists[0][2]))
                item_prefix = None
            else:
                blocks.append((_wrap(text, prefix, prefix), None))
    # Items of one list sit on consecutive lines; everything else is separated by a blank line.
    out = ""
    for i, (block, group) in enumerate(blocks):
        if i and (group is None or group != blocks[i - 1][1]):
            out += "\n"
        out += block + "\n"
    return out.rstrip("\n")
