"""User-agent classification of opens and clicks."""

from __future__ import annotations

import pytest

from service.tracking.agents import PREFETCH_SECONDS, Classification, classify

GMAIL = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
OUTLOOK = (
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Outlook 16.0.17928; Pro"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (GMAIL, Classification(machine=False, proxy="gmail")),
        ("Mozilla/5.0", Classification(machine=True, proxy="apple_mpp")),
        (YAHOO, Classification(machine=True, proxy="yahoo")),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", Classification(True, "barracuda")),
        ("Mimecast-URL-Protect/1.0", Classification(True, "mimecast")),
        ("Proofpoint URL Defense", Classification(True, "proofpoint")),
        ("Microsoft SafeLinks scanner", Classification(True, "microsoft_defender")),
        ("python-requests/2.31.0", Classification(True, "bot")),
        ("curl/8.5.0", Classification(True, "bot")),
        ("Go-http-client/1.1", Classification(True, "bot")),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0", Classification(True, "bot")),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", Classification(True, "bot")),
        (None, Classification(machine=True, proxy="unknown")),
        ("   ", Classification(machine=True, proxy="unknown")),
        (OUTLOOK, Classification(machine=False)),
        (THUNDERBIRD, Classification(machine=False)),
        (IPHONE_MAIL, Classification(machine=False)),
        (CHROME, Classification(machine=False)),
    ],
)
def test_classification_table(user_agent: str | None, expected: Classification) -> None:
    """Each known agent gets its documented classification."""
    assert classify(user_agent, seconds_since_sent=3600) == expected


def test_fetch_right_after_send_is_prefetch() -> None:
    """A desktop client's agent within the prefetch time is a machine."""
    result = classify(THUNDERBIRD, seconds_since_sent=PREFETCH_SECONDS / 2)
    assert result == Classification(machine=True, proxy="prefetch")


def test_gmail_right_after_send_stays_human() -> None:
    """Gmail's proxy is matched by agent before the timing rule."""
    assert classify(GMAIL, seconds_since_sent=0.1) == Classification(False, "gmail")


def test_unknown_send_time_uses_agent_only() -> None:
    """Without a send time only the agent decides."""
    assert classify(CHROME, seconds_since_sent=None) == Classification(machine=False)
