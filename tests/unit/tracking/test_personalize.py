"""Pixel insertion, click rewriting and unsubscribe headers in one recipient's copy."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from service.tracking import tokens
from service.tracking.personalize import (
    UNSUBSCRIBE_PLACEHOLDER,
    original_link,
    personalize,
    trackable_target,
)

KEY = b"secret-key-for-tests-0123456789"
HOST = "https://mail.example.com"
REQUEST_ID = str(uuid.uuid4())
PIXEL_MARK = '<img src="https://mail.example.com/v1/events/open?requestId='


def _personalize(html: str | None, **flags: bool) -> str | None:
    result = personalize(
        html,
        REQUEST_ID,
        track_clicks=flags.get("track_clicks", False),
        unsubscribe=flags.get("unsubscribe", False),
        key=KEY,
        server_host=HOST,
    )
    return result.html


def _hrefs(html: str) -> list[str]:
    return re.findall(r'(?i)href\s*=\s*"([^"]*)"', html)


def _click_target(tracked: str) -> str:
    parts = urlsplit(tracked.replace("&amp;", "&"))
    assert f"{parts.scheme}://{parts.netloc}" == HOST
    assert parts.path == "/v1/events/click"
    verified = tokens.verify(KEY, "click", parse_qs(parts.query)["token"][0])
    assert verified.request_id == REQUEST_ID
    assert verified.target is not None
    return verified.target


# --- pixel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("closing", ["</body>", "</BODY>", "</Body>", "</body >"])
def test_pixel_before_body_end_any_case(closing: str) -> None:
    """The pixel goes right before the closing body tag, whatever its case."""
    html = f"<html><body><p>Hi</p>{closing}</html>"
    result = _personalize(html)
    assert result is not None
    assert result.index(PIXEL_MARK) < result.index(closing)
    assert result.endswith(f"{closing}</html>")
    assert result.count(PIXEL_MARK) == 1


def test_pixel_appended_without_body_tag() -> None:
    """A fragment without a body tag gets the pixel at its end."""
    result = _personalize("<p>Hello</p>")
    assert result is not None
    assert result.startswith("<p>Hello</p>" + PIXEL_MARK)
    assert result.endswith("/>")


def test_text_only_email_gets_no_pixel() -> None:
    """Without HTML there is nothing to insert into."""
    result = personalize(
        None, REQUEST_ID, track_clicks=True, unsubscribe=False, key=KEY, server_host=HOST,
        text="Hello",
    )
    assert result.html is None
    assert result.text == "Hello"


@pytest.mark.parametrize(
    "decoy",
    [
        "<!-- </body> -->",
        '<a title="</body>">x</a>',
        "<a title='</BODY>'>x</a>",
        "<script>document.write('</body>')</script>",
        "<style>/* </body> */</style>",
    ],
)
def test_pixel_ignores_body_end_in_decoys(decoy: str) -> None:
    """`</body>` inside comments, attributes, scripts and styles is not the body's end."""
    html = f"<html><body><p>x</p>{decoy}<p>y</p></body></html>"
    result = _personalize(html)
    assert result is not None
    before_end = html.removesuffix("</body></html>")
    assert result.startswith(before_end + PIXEL_MARK)
    assert result.endswith("/></body></html>")


def test_pixel_ignores_decoy_after_real_body_end() -> None:
    """A `</body>` in a trailing comment does not move the pixel past the real one."""
    html = "<body><p>x</p></body><!-- </body> -->"
    result = _personalize(html)
    assert result is not None
    assert result.index(PIXEL_MARK) < result.index("</body><!--")


def test_pixel_before_last_of_several_body_ends() -> None:
    """With several real closing body tags the pixel goes before the last one."""
    html = "<body>a</body>b</body>"
    result = _personalize(html)
    assert result is not None
    assert result.startswith("<body>a</body>b" + PIXEL_MARK)


def test_pixel_token_is_valid_open_token() -> None:
    """The pixel's requestId is an open token for this request."""
    result = _personalize("<body></body>")
    assert result is not None
    token = re.search(r"requestId=([A-Za-z0-9_-]+)", result)
    assert token is not None
    assert tokens.verify(KEY, "open", token.group(1)).request_id == REQUEST_ID


def test_rest_of_html_is_unchanged() -> None:
    """Insertion changes nothing but the inserted image."""
    html = "<html>\n<BODY class='x'>\n  <p>Hé &amp; ho</p>\n</BODY>\n</html>\n"
    result = _personalize(html)
    assert result is not None
    assert re.sub(r"<img [^>]*/>", "", result) == html


# --- clicks --------------------------------------------------------------------------------


def test_click_rewrite_decodes_entities() -> None:
    """`&amp;` and other references are decoded before signing."""
    html = '<a href="https://example.com/p?a=1&amp;b=2&#38;c=&quot;3&quot;">x</a>'
    result = _personalize(html, track_clicks=True)
    assert result is not None
    (tracked,) = _hrefs(result)
    assert _click_target(tracked) == 'https://example.com/p?a=1&b=2&c="3"'


@pytest.mark.parametrize(
    "anchor",
    [
        '<a href="https://example.com/x">x</a>',
        "<a href='https://example.com/x'>x</a>",
        "<a href=https://example.com/x>x</a>",
        '<A HREF = "https://example.com/x" class="b">x</A>',
        '<a class="c" href="https://example.com/x"/>',
        '<area shape="rect" href="https://example.com/x">',
    ],
)
def test_click_rewrite_handles_quoting(anchor: str) -> None:
    """Double, single and unquoted values, spacing and case are all rewritten."""
    result = _personalize(anchor, track_clicks=True)
    assert result is not None
    (tracked,) = _hrefs(result)
    assert _click_target(tracked) == "https://example.com/x"
    assert "https://example.com/x" not in result.split("token=")[0]


@pytest.mark.parametrize(
    "href",
    [
        "mailto:someone@example.com",
        "tel:+15551234567",
        "#section",
        "/relative/path",
        "relative.html",
        "//example.com/protocol-relative",
        "ftp://example.com/file",
        "javascript:alert(1)",
        UNSUBSCRIBE_PLACEHOLDER,
    ],
)
def test_click_rewrite_leaves_other_links(href: str) -> None:
    """Only absolute http and https links are tracked."""
    html = f'<a href="{href}">x</a>'
    result = _personalize(html, track_clicks=True)
    assert result is not None
    assert result.startswith(html)


def test_click_rewrite_only_for_links() -> None:
    """Stylesheets, images and hrefs in comments or text stay untouched."""
    html = (
        '<link rel="stylesheet" href="https://cdn.example.com/s.css">'
        '<img src="https://cdn.example.com/i.png">'
        '<!-- <a href="https://example.com/hidden"> -->'
        "<p>href=\"https://example.com/text\"</p>"
    )
    result = _personalize(html, track_clicks=True)
    assert result is not None
    assert result.startswith(html)


def test_click_rewrite_off_keeps_links() -> None:
    """Without click tracking links stay as written."""
    html = '<a href="https://example.com/x">x</a>'
    result = _personalize(html)
    assert result is not None
    assert result.startswith(html)


def test_several_links_each_signed() -> None:
    """Each link gets its own token for its own target."""
    html = (
        '<a href="https://a.example/1">1</a><a href="mailto:x@example.com">m</a>'
        '<a href="http://b.example/2?x=1&amp;y=2">2</a>'
    )
    result = _personalize(html, track_clicks=True)
    assert result is not None
    hrefs = _hrefs(result)
    assert _click_target(hrefs[0]) == "https://a.example/1"
    assert hrefs[1] == "mailto:x@example.com"
    assert _click_target(hrefs[2]) == "http://b.example/2?x=1&y=2"


def test_recipients_of_one_message_differ() -> None:
    """The same document personalized for two recipients binds each one's own request id."""
    html = '<html><body><a href="https://a.example/1">1</a>{{unsubscribe_url}}</body></html>'
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    copies = [
        personalize(html, request_id, track_clicks=True, unsubscribe=True, key=KEY,
                    server_host=HOST).html
        for request_id in (first, second, first)
    ]
    assert copies[0] != copies[1]
    assert copies[0] == copies[2]
    for copy, request_id in zip(copies, (first, second), strict=False):
        assert copy is not None
        token = parse_qs(urlsplit(_hrefs(copy)[0]).query)["token"][0]
        assert tokens.verify(KEY, "click", token).request_id == request_id
        assert "{{unsubscribe_url}}" not in copy


# --- unsubscribe ---------------------------------------------------------------------------


def test_unsubscribe_headers() -> None:
    """One-click unsubscribe headers follow RFC 8058."""
    result = personalize(
        "<body></body>", REQUEST_ID, track_clicks=False, unsubscribe=True, key=KEY,
        server_host=HOST,
    )
    header = result.headers["List-Unsubscribe"]
    assert header.startswith(f"<{HOST}/v1/unsubscribe?token=")
    assert header.endswith(">")
    token = header[1:-1].split("token=")[1]
    assert tokens.verify(KEY, "unsubscribe", token).request_id == REQUEST_ID
    assert result.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_no_unsubscribe_no_headers() -> None:
    """Without unsubscribe no headers are added and the placeholder stays."""
    html = f'<a href="{UNSUBSCRIBE_PLACEHOLDER}">u</a>'
    result = personalize(
        html, REQUEST_ID, track_clicks=False, unsubscribe=False, key=KEY, server_host=HOST
    )
    assert result.headers == {}
    assert result.html is not None
    assert UNSUBSCRIBE_PLACEHOLDER in result.html


def test_unsubscribe_placeholder_replaced_not_tracked() -> None:
    """The visible unsubscribe link gets the page URL and is not click-tracked."""
    html = f'<body><a href="{UNSUBSCRIBE_PLACEHOLDER}">Unsubscribe</a></body>'
    result = personalize(
        html, REQUEST_ID, track_clicks=True, unsubscribe=True, key=KEY, server_host=HOST,
        text=f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}",
    )
    expected = result.headers["List-Unsubscribe"][1:-1]
    assert result.html is not None
    assert _hrefs(result.html) == [expected]
    assert result.text == f"Unsubscribe: {expected}"


# --- helpers -------------------------------------------------------------------------------


def test_trackable_target_strips_tabs_and_newlines() -> None:
    """Tabs and newlines inside a URL are dropped, as browsers do."""
    assert trackable_target(" https://ex\nample.com/\t ") == "https://example.com/"


def test_original_link_resolves_tracked_url() -> None:
    """SES's view of a tracked link maps back to the original target."""
    html = _personalize('<a href="https://example.com/x?a=1&amp;b=2">x</a>', track_clicks=True)
    assert html is not None
    tracked = _hrefs(html)[0].replace("&amp;", "&")
    assert original_link(tracked, KEY, REQUEST_ID) == "https://example.com/x?a=1&b=2"


def test_original_link_keeps_other_links() -> None:
    """Links that are not this request's tracked redirect pass through."""
    other = "https://example.com/v1/events/click?token=bogus"
    assert original_link(other, KEY, REQUEST_ID) == other
    assert original_link("https://example.com/", KEY, REQUEST_ID) == "https://example.com/"


def test_overlong_link_stays_untracked() -> None:
    """A link too long to sign into a verifiable token is left as written."""
    long_link = "https://example.com/?q=" + "a" * tokens.MAX_TARGET_BYTES
    html = f'<a href="{long_link}">x</a>'
    result = _personalize(html, track_clicks=True)
    assert result is not None
    assert result.startswith(html)


def test_longest_trackable_link_verifies() -> None:
    """A link at the size limit still gets a token that verifies."""
    prefix = "https://example.com/?q="
    link = prefix + "a" * (tokens.MAX_TARGET_BYTES - len(prefix))
    result = _personalize(f'<a href="{link}">x</a>', track_clicks=True)
    assert result is not None
    assert _click_target(_hrefs(result)[0]) == link
