"""SNS signing certificates: looked up in memory, then in SNS_CERTS_DIR, then fetched.

A certificate for a SigningCertURL is stored as `<sha256 hex of the full URL>.pem` in the
certificates directory. A file placed there ahead of time is used without any network
request, which is how tests, air-gapped hosts and operators who pin certificates supply them.
A fetched certificate is written there too, so a restart does not fetch it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from service.feedback.http import HttpGet, https_getter
from service.feedback.rejection import Rejected
from service.logging import get_logger

log = get_logger(__name__)

FETCH_TIMEOUT_SECONDS = 3.0
"""Short, because SNS waits at most 15 seconds for the callback's response."""


def certificate_file_name(signing_cert_url: str) -> str:
    """Return the file name a certificate for `signing_cert_url` has in SNS_CERTS_DIR."""
    return hashlib.sha256(signing_cert_url.encode()).hexdigest() + ".pem"


def _public_key(pem: bytes, origin: str) -> RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise Rejected(
            403, f"The signing certificate from {origin} is not a PEM certificate."
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise Rejected(403, f"The signing certificate from {origin} does not hold an RSA key.")
    return key


class CertificateStore:
    """Public keys of SNS signing certificates, keyed by SigningCertURL."""

    def __init__(self, directory: Path, fetch: HttpGet | None = None) -> None:
        self._directory = directory
        self._fetch = fetch or https_getter(FETCH_TIMEOUT_SECONDS)
        self._keys: dict[str, RSAPublicKey] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def public_key(self, url: str) -> RSAPublicKey:
        """Return the key for `url`, which the caller has checked against the host rule."""
        key = self._keys.get(url)
        if key is not None:
            return key
        # One lookup per URL at a time, so a burst of messages fetches a new certificate once.
        lock = self._locks.setdefault(url, asyncio.Lock())
        try:
            async with lock:
                key = self._keys.get(url)
                if key is None:
                    key = await self._load(url)
                    self._keys[url] = key
        finally:
            # Locks are dropped once used, so URLs that fail to load do not pile up here.
            if not lock.locked():
                self._locks.pop(url, None)
        return key

    async def _load(self, url: str) -> RSAPublicKey:
        path = self._directory / certificate_file_name(url)
        if path.is_file():
            return _public_key(path.read_bytes(), str(path))
        pem = await self._download(url)
        key = _public_key(pem, url)
        self._save(path, pem, url)
        return key

    async def _download(self, url: str) -> bytes:
        try:
            result = await self._fetch(url)
        except OSError as error:
            log.warning("sns_certificate_fetch_failed", url=url, error=str(error))
            raise Rejected(503, f"The signing certificate {url} could not be fetched.") from None
        if result.status != 200:
            log.warning("sns_certificate_fetch_failed", url=url, http_status=result.status)
            raise Rejected(
                503, f"Fetching the signing certificate {url} returned HTTP {result.status}."
            )
        log.info("sns_certificate_fetched", url=url)
        return result.body

    def _save(self, path: Path, pem: bytes, url: str) -> None:
        # Written to a temporary file and renamed, so another process never reads half a file.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                file.write(pem)
            os.replace(temporary, path)
        except OSError as error:
            # The certificate is still cached in memory; only a restart would fetch it again.
            log.warning("sns_certificate_not_saved", url=url, path=str(path), error=str(error))
