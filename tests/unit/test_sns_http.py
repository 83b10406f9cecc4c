"""Outbound GETs to a local server: redirects are not followed; certificates are cached."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from service.feedback.certificates import CertificateStore, certificate_file_name
from service.feedback.http import HttpResult, https_getter
from service.feedback.local_signer import LocalSnsSigner
from service.feedback.rejection import Rejected


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared by the test server's requests

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/target")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    _Handler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_redirect_not_followed(local_server: str) -> None:
    result = await https_getter(2.0)(f"{local_server}/redirect")
    assert result.status == 302
    assert _Handler.hits == ["/redirect"]


async def test_get_returns_body(local_server: str) -> None:
    result = await https_getter(2.0)(f"{local_server}/page")
    assert result == HttpResult(200, b"ok")


async def test_fetched_certificate_cached_in_memory_and_on_disk(tmp_path: Path) -> None:
    signer = LocalSnsSigner.create()
    fetched: list[str] = []

    async def fetch(url: str) -> HttpResult:
        fetched.append(url)
        return HttpResult(200, signer.certificate_pem)

    store = CertificateStore(tmp_path / "certs", fetch)
    await store.public_key(signer.signing_cert_url)
    await store.public_key(signer.signing_cert_url)
    assert fetched == [signer.signing_cert_url]
    saved = tmp_path / "certs" / certificate_file_name(signer.signing_cert_url)
    assert saved.read_bytes() == signer.certificate_pem

    async def no_fetch(url: str) -> HttpResult:
        raise AssertionError(url)

    await CertificateStore(tmp_path / "certs", no_fetch).public_key(signer.signing_cert_url)


async def test_failed_fetch_is_retryable(tmp_path: Path) -> None:
    async def fetch(url: str) -> HttpResult:
        raise TimeoutError("timed out")

    with pytest.raises(Rejected) as caught:
        await CertificateStore(tmp_path, fetch).public_key(
            "https://sns.us-east-1.amazonaws.com/x.pem"
        )
    assert caught.value.status == 503


async def test_non_pem_certificate_rejected(tmp_path: Path) -> None:
    async def fetch(url: str) -> HttpResult:
        return HttpResult(200, b"<html>not a certificate</html>")

    with pytest.raises(Rejected) as caught:
        await CertificateStore(tmp_path, fetch).public_key(
            "https://sns.us-east-1.amazonaws.com/x.pem"
        )
    assert caught.value.status == 403
