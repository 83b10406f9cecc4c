"""Telling a person's open or click from a machine's: image proxies, prefetchers, scanners.

The rules, first match wins (result: machine or not, and the `proxy` name):

1. No user agent at all: machine, `unknown`. Mail clients and browsers always send one.
2. Gmail's image proxy, `... (via ggpht.com GoogleImageProxy)`: not a machine, `gmail`.
3. Yahoo's image proxy, `YahooMailProxy; https://help.yahoo.com/...`: machine, `yahoo`.
4. Apple Mail Privacy Protection, the agent exactly `Mozilla/5.0`: machine, `apple_mpp`.
5. Mail security scanners (Barracuda, Mimecast, Proofpoint, Microsoft Defender Safe Links,
   Symantec, Trend Micro, Cisco IronPort, Fortinet): machine, the scanner's name.
6. HTTP libraries, crawlers and headless browsers (`python-requests/2.31`, `curl/8.5.0`,
   `Go-http-client/1.1`, `HeadlessChrome`, `...bot`): machine, `bot`.
7. Any agent less than `PREFETCH_SECONDS` after SES accepted the email: machine, `prefetch`.
8. Everything else (Outlook, Thunderbird, Apple Mail on iOS, a browser): a person, no proxy.

Gmail fetches images through its proxy when the recipient opens the message, so that fetch is
a real open (flagged with its proxy so reports can show it). Apple's proxy fetches every image
when the message reaches the device, whether or not it is read. SocketLabs' help page
"Identifying Apple MPP opens in notification API events" describes that prefetch. Apple does
not document the agent; the bare `Mozilla/5.0` rule is the one ESPs commonly use, and an
estimate. Scanner names are
the products' own names as they appear in their agents; they change without notice, so this
table is a heuristic to extend, not a list to trust.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# A person cannot open or click a message within this many seconds of SES accepting it:
# delivery alone usually takes longer. Fetches this early are prefetches or scanners.
PREFETCH_SECONDS = 2.0

_SCANNERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("barracuda", re.compile(r"barracuda", re.IGNORECASE)),
    ("mimecast", re.compile(r"mimecast", re.IGNORECASE)),
    ("proofpoint", re.compile(r"proofpoint|ppops", re.IGNORECASE)),
    ("microsoft_defender", re.compile(r"safelinks|microsoft defender|\bATP\b", re.IGNORECASE)),
    ("symantec", re.compile(r"symantec|messagelabs", re.IGNORECASE)),
    ("trend_micro", re.compile(r"trend ?micro", re.IGNORECASE)),
    ("cisco", re.compile(r"ironport|cisco", re.IGNORECASE)),
    ("fortinet", re.compile(r"fortinet|fortigate|fortimail", re.IGNORECASE)),
)
_BOT = re.compile(
    r"bot\b|spider|crawler|python-requests|python-urllib|aiohttp|httpx|curl/|wget/"
    r"|go-http-client|java/|okhttp|libwww-perl|headlesschrome|phantomjs|scanner",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Classification:
    """Whether a fetch was a machine's, and which proxy or scanner made it when known."""

    machine: bool
    proxy: str | None = None


HUMAN = Classification(machine=False)


def classify(user_agent: str | None, seconds_since_sent: float | None = None) -> Classification:
    """Classify a pixel fetch or link click by user agent and time since the send."""
    by_agent = _classify_agent((user_agent or "").strip())
    if by_agent is not HUMAN:
        return by_agent
    if seconds_since_sent is not None and seconds_since_sent < PREFETCH_SECONDS:
        return Classification(machine=True, proxy="prefetch")
    return HUMAN


# A campaign's opens come from a few hundred distinct agents, so most lookups are cache hits.
# Callers cut agents to a bounded length (see service.tracking.record), which bounds the cache.
@functools.lru_cache(maxsize=4096)
def _classify_agent(agent: str) -> Classification:
    if not agent:
        return Classification(machine=True, proxy="unknown")
    if "GoogleImageProxy" in agent or "ggpht.com" in agent:
        return Classification(machine=False, proxy="gmail")
    if "YahooMailProxy" in agent:
        return Classification(machine=True, proxy="yahoo")
    if agent == "Mozilla/5.0":
        return Classification(machine=True, proxy="apple_mpp")
    for name, pattern in _SCANNERS:
        if pattern.search(agent):
            return Classification(machine=True, proxy=name)
    if _BOT.search(agent):
        return Classification(machine=True, proxy="bot")
    return HUMAN
