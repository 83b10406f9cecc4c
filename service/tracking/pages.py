"""The small HTML pages and the image that recipients' mail clients and browsers see."""

from __future__ import annotations

import html

# A 1x1 transparent GIF89a: one palette entry marked transparent by the graphic control
# extension, and one pixel of that entry.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00"  # header, 1x1 screen, 2-colour palette
    b"\x00\x00\x00\xff\xff\xff"  # palette: black, white
    b"!\xf9\x04\x01\x00\x00\x00\x00"  # graphic control extension: colour 0 is transparent
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00"  # image descriptor: 1x1 at 0,0
    b"\x02\x02D\x01\x00"  # LZW data: clear, pixel 0, end
    b";"  # trailer
)

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#222}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def not_found_page() -> str:
    return _page(
        "Link not valid",
        "<p>This link is not valid. It may have been copied incompletely; "
        "try the link in the original email again.</p>",
    )


def confirm_unsubscribe_page(action: str) -> str:
    """Render the page a GET shows: a button that POSTs, since link scanners follow GETs."""
    return _page(
        "Unsubscribe",
        "<p>Do you want to stop receiving these emails?</p>"
        f'<form method="post" action="{html.escape(action)}">'
        '<button type="submit" name="confirm" value="yes">Unsubscribe</button></form>',
    )


def unsubscribed_page() -> str:
    return _page("Unsubscribed", "<p>You will not receive these emails any more.</p>")
