"""Finding places in an email's HTML: the closing body tag and the links of `<a>` and `<area>`.

Python's `html.parser` tokenizes the document, so a `</body>` or an `href` inside a comment,
an attribute value, or the text of a `<script>` or `<style>` element is not mistaken for
markup. Edits are then made at the source offsets the parser reports, which leaves every
other byte of the author's HTML as it was.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

_LINK_TAGS = frozenset({"a", "area"})

# One attribute of a start tag, as browsers split them: a name, then an optional value that
# is double-quoted, single-quoted or unquoted. Slashes and whitespace between attributes are
# skipped by the leading group.
_ATTRIBUTE = re.compile(
    r"""[\s/]*(?P<name>[^\s/>"'=][^\s/>=]*|=[^\s/>=]*)"""
    r"""(?:\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s>]+))?"""
)
_TAG_NAME = re.compile(r"<[^\s/>]+")


@dataclass(frozen=True)
class Span:
    """A half-open range of character offsets in the source."""

    start: int
    end: int


@dataclass(frozen=True)
class Href:
    """The value of one `href` attribute: its span in the source, quotes included, and its
    raw text, with the quotes removed but HTML character references still in it."""

    span: Span
    raw: str


class _Scan(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.body_ends: list[int] = []
        self.hrefs: list[Href] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_ends.append(self._offset())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _LINK_TAGS:
            return
        text = self.get_starttag_text()
        if text is None:
            return
        href = _first_href(text)
        if href is not None:
            start = self._offset()
            self.hrefs.append(Href(Span(start + href.span.start, start + href.span.end), href.raw))

    handle_startendtag = handle_starttag


def _first_href(tag_text: str) -> Href | None:
    # Browsers use the first of repeated attributes, so only the first href is a link.
    name = _TAG_NAME.match(tag_text)
    position = name.end() if name else 0
    while True:
        match = _ATTRIBUTE.match(tag_text, position)
        if match is None or match.end() == position:
            return None
        position = match.end()
        value = match.group("value")
        if match.group("name").lower() != "href" or value is None:
            continue
        raw = value[1:-1] if value[0] in "\"'" else value
        return Href(Span(match.start("value"), match.end("value")), raw)


def scan(html: str) -> _Scan:
    """Tokenize `html` and collect the offsets of its closing body tags and link hrefs."""
    parser = _Scan(html)
    parser.feed(html)
    parser.close()
    return parser


@dataclass(frozen=True)
class Layout:
    """The positions of the links and of the last closing body tag in one HTML document."""

    hrefs: tuple[Href, ...]
    body_end: int | None
    """Offset of the last `</body>`, or None when there is none."""


@functools.lru_cache(maxsize=256)
def layout(html: str) -> Layout:
    """Return the layout of `html`, scanned once per distinct document.

    Every recipient of a message gets the same HTML, and tokenizing it costs more than the
    rest of sending an email, so the result is kept for the most recent documents.
    """
    parser = scan(html)
    return Layout(tuple(parser.hrefs), parser.body_ends[-1] if parser.body_ends else None)


@dataclass(frozen=True)
class Edit:
    """Replace the source range `span` (empty for an insertion) with `text`."""

    span: Span
    text: str


def apply(html: str, edits: list[Edit], literal: Callable[[str], str] = lambda s: s) -> str:
    """Apply non-overlapping `edits` to `html` in one pass; `literal` maps the unedited runs."""
    pieces: list[str] = []
    previous = 0
    for edit in sorted(edits, key=lambda e: (e.span.start, e.span.end)):
        pieces.append(literal(html[previous : edit.span.start]))
        pieces.append(edit.text)
        previous = edit.span.end
    pieces.append(literal(html[previous:]))
    return "".join(pieces)


def href_edits(document: Layout, rewrite: Callable[[str], str | None]) -> list[Edit]:
    """Return the edits that replace each href value for which `rewrite` returns text."""
    edits = []
    for href in document.hrefs:
        replacement = rewrite(href.raw)
        if replacement is not None:
            edits.append(Edit(href.span, replacement))
    return edits
