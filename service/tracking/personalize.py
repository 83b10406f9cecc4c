"""Per-recipient tracking: the open pixel, tracked links and the unsubscribe headers.

`personalize` is a pure function: the dispatcher calls it for each recipient just before the
SES call, with plain values, and puts the returned HTML, text and headers into the message.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from service.tracking import tokens
from service.tracking.markup import Edit, Span, apply, href_edits, layout

UNSUBSCRIBE_PLACEHOLDER = "{{unsubscribe_url}}"
"""Replaced in the HTML and text by the recipient's unsubscribe page URL when the message has
`unsubscribe` on; left as it is otherwise."""

OPEN_PATH = "/v1/events/open"
CLICK_PATH = "/v1/events/click"
UNSUBSCRIBE_PATH = "/v1/unsubscribe"

# The WHATWG URL parser drops ASCII tabs and newlines anywhere in a URL before parsing it.
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")


@dataclass(frozen=True)
class Personalized:
    """The recipient's copy of a message."""

    html: str | None
    text: str | None
    headers: dict[str, str] = field(default_factory=dict)
    """Headers to add to the email, in order (SESv2 `Content.Simple.Headers`)."""


def ses_headers(headers: Mapping[str, str]) -> list[dict[str, str]]:
    """Format headers for SESv2 `SendEmail`'s `Content.Simple.Headers`."""
    return [{"Name": name, "Value": value} for name, value in headers.items()]


def open_url(key: bytes, server_host: str, request_id: str) -> str:
    token = tokens.sign(key, "open", request_id)
    return f"{server_host.rstrip('/')}{OPEN_PATH}?requestId={token}"


def click_url(key: bytes, server_host: str, request_id: str, target: str) -> str:
    token = tokens.sign(key, "click", request_id, target)
    return f"{server_host.rstrip('/')}{CLICK_PATH}?token={token}"


def unsubscribe_url(key: bytes, server_host: str, request_id: str) -> str:
    token = tokens.sign(key, "unsubscribe", request_id)
    return f"{server_host.rstrip('/')}{UNSUBSCRIBE_PATH}?token={token}"


def original_link(link: str, key: bytes, request_id: str) -> str:
    """Return the target of a tracked click URL made for `request_id`, or any other link as is.

    SES's click tracking rewrites the message after this service rewrote its links, so the
    link in an SES `Click` event is the tracked redirect, not the URL the author wrote.
    """
    try:
        parts = urlsplit(link)
    except ValueError:
        return link
    if not parts.path.endswith(CLICK_PATH):
        return link
    token = parse_qs(parts.query).get("token", [None])[0]
    try:
        verified = tokens.verify(key, "click", token)
    except tokens.InvalidToken:
        return link
    if verified.request_id != request_id or verified.target is None:
        return link
    return verified.target


def trackable_target(raw_href: str) -> str | None:
    """Return the URL a raw href value points to if it is an absolute http(s) link, else None.

    Character references are decoded first (`&amp;` becomes `&`), as a browser would before
    following the link, so the tracked redirect ends at the same URL the author wrote.
    """
    target = _TAB_OR_NEWLINE.sub("", html_lib.unescape(raw_href)).strip()
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if len(target.encode()) > tokens.MAX_TARGET_BYTES:
        # Too long to sign into a token that `verify` accepts, so the link stays untracked.
        return None
    return target


def personalize(
    html: str | None,
    request_id: str,
    *,
    track_clicks: bool,
    unsubscribe: bool,
    key: bytes,
    server_host: str,
    text: str | None = None,
) -> Personalized:
    """Add tracking to one recipient's copy of a message.

    - `html`: the message's HTML, or None for a text-only message (which gets no pixel).
    - `request_id`: the email's request id, a UUID string; every token binds it.
    - `track_clicks`: rewrite each absolute http(s) link of `<a>` and `<area>` to a signed
      redirect through `SERVER_HOST/v1/events/click`.
    - `unsubscribe`: add `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058) and replace
      `{{unsubscribe_url}}` in the HTML and text with the unsubscribe page URL.
    - `key`: the tracking secret as bytes (see `service.tracking.secret.tracking_key`).
    - `server_host`: the public base URL, `SERVER_HOST`.
    - `text`: the plain-text part, if any; only the placeholder is replaced in it.

    The open pixel goes right before the last `</body>`, or at the end when there is none.
    """
    headers: dict[str, str] = {}
    url = unsubscribe_url(key, server_host, request_id) if unsubscribe else None
    if url is not None:
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if text is not None:
            text = text.replace(UNSUBSCRIBE_PLACEHOLDER, url)
    if html is None:
        return Personalized(html=None, text=text, headers=headers)
    # All edits are made against the original document in one pass, so it is tokenized once
    # per message (markup.layout) rather than once per edit and recipient. Tracked links and
    # the pixel contain no placeholder and no markup, so the result is the same as editing
    # one step after the other: links first, then the placeholder, then the pixel.
    document = layout(html)
    edits = []
    if track_clicks:
        edits = href_edits(document, lambda raw: _tracked_href(raw, key, server_host, request_id))
    at = len(html) if document.body_end is None else document.body_end
    edits.append(Edit(Span(at, at), _pixel(open_url(key, server_host, request_id))))
    escaped = html_lib.escape(url) if url is not None else None
    html = apply(html, edits, lambda run: _with_unsubscribe(run, escaped))
    return Personalized(html=html, text=text, headers=headers)


def _with_unsubscribe(run: str, escaped_url: str | None) -> str:
    if escaped_url is None:
        return run
    return run.replace(UNSUBSCRIBE_PLACEHOLDER, escaped_url)


def _tracked_href(raw: str, key: bytes, server_host: str, request_id: str) -> str | None:
    target = trackable_target(raw)
    if target is None:
        return None
    return '"' + html_lib.escape(click_url(key, server_host, request_id, target)) + '"'


def _pixel(url: str) -> str:
    return (
        f'<img src="{html_lib.escape(url)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )
