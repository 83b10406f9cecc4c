"""SESv2 SendEmail over HTTP, built from botocore's parts but not through its client.

A botocore client call spends most of its CPU time outside the network. It validates and
serialises parameters from the service model, emits a dozen events, and parses the response
from the model. For one fixed operation that work is the same every time, and on a busy
dispatcher it, not SES, limits how many sends a process can make. `SesSender` keeps what
matters from botocore (the credential chain with its refreshes, SigV4 signing, the CA
bundle, endpoint resolution, and its HTTP session when a proxy is configured) and does the
rest directly: the JSON body is encoded once with msgspec, each sending thread keeps its own
connection (service.dispatch.direct_http), and the response is read as the restJson
protocol defines it (tests/integration/test_ses_sender.py checks both against botocore's client).

Signing and sending are separate steps, so that a request is signed before it waits for its
rate slot and leaves the moment the slot comes.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import botocore
import botocore.session
import msgspec
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies

from service import __version__
from service.dispatch.direct_http import DirectHttp
from service.errors import ConfigError

SEND_EMAIL_PATH = "/v2/email/outbound-emails"
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
MAX_CALL_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
"""The maximum duration of one SendEmail call before it fails with a timeout."""

_encoder = msgspec.json.Encoder()


class SesError(Exception):
    """An error response from SES to SendEmail."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class SignedRequest:
    """A SendEmail request, signed and ready to leave."""

    prepared: AWSPreparedRequest


class SesSender:
    """Sends SendEmail requests to one SES endpoint; one instance is shared by all threads."""

    def __init__(
        self,
        session: botocore.session.Session,
        region: str,
        endpoint_url: str,
        signing_name: str,
        *,
        max_connections: int = 32,
        direct: bool | None = None,
    ) -> None:
        """`direct` None sends on the thread's own connection unless a proxy applies;
        False always uses botocore's HTTP session."""
        credentials: Credentials | None = session.get_credentials()
        if credentials is None:
            raise ConfigError(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or run with an IAM role"
            )
        self._credentials = credentials
        self._region = region
        self._signing_name = signing_name
        self._url = endpoint_url.rstrip("/") + SEND_EMAIL_PATH
        self._user_agent = f"ses-sender/{__version__} botocore/{botocore.__version__}"

        ca_bundle = session.get_config_variable("ca_bundle")
        verify: bool | str = ca_bundle if ca_bundle is not None else True
        proxies = get_environ_proxies(self._url)
        self._path = urlsplit(self._url).path
        self._direct: DirectHttp | None = None
        self._http: URLLib3Session | None = None
        if proxies or direct is False:
            # The HTTP session a botocore client would build: environment proxies, the CA
            # bundle, TCP_NODELAY so that the body does not wait for an ACK.
            self._http = URLLib3Session(
                verify=verify,
                proxies=proxies,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                max_pool_connections=max_connections,
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            )
        else:
            self._direct = DirectHttp(self._url, verify=verify,
                                      connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                      read_timeout=READ_TIMEOUT_SECONDS)

    @property
    def through_proxy(self) -> bool:
        """Whether requests go through a proxy from the environment (HTTPS_PROXY, ...)."""
        return self._http is not None

    @property
    def url(self) -> str:
        return self._url

    def sign(self, params: dict[str, Any]) -> SignedRequest:
        """Encode SendEmail `params` (as botocore's send_email takes them) and sign them."""
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=_encoder.encode(params),
            headers={"Content-Type": "application/json", "User-Agent": self._user_agent},
        )
        # get_frozen_credentials refreshes temporary credentials shortly before they expire.
        SigV4Auth(self._credentials.get_frozen_credentials(), self._signing_name,
                  self._region).add_auth(request)
        return SignedRequest(request.prepare())

    def send(self, request: SignedRequest) -> str:
        """Send a signed request once and return the SES message id.

        Raises SesError when SES responds with an error, and DirectHttpError (or, through a
        proxy, botocore's HTTP exceptions) when no response arrives.
        """
        prepared = request.prepared
        if self._direct is not None:
            assert isinstance(prepared.body, bytes)
            headers = dict(prepared.headers.items())
            headers["Host"] = self._direct.host_header
            status, response, content = self._direct.post(self._path, prepared.body, headers)
            error_headers: Any = response.headers
        else:
            assert self._http is not None
            answer = self._http.send(prepared)
            status, content, error_headers = answer.status_code, answer.content, answer.headers
        if status >= 300:
            code, message = _error_of(error_headers, content, status)
            raise SesError(code, message, status)
        return str(json.loads(content)["MessageId"])

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        if self._http is not None:
            self._http.close()


def _error_of(headers: Any, content: bytes, status: int) -> tuple[str, str]:
    """Read the error code and message of a restJson error answer."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    # As botocore reads restJson errors: the header wins over the body, and either may carry
    # a ":<detail>" suffix or a "<namespace>#" prefix. Without either, the HTTP status is the code.
    code = headers.get("x-amzn-ErrorType") or body.get("code") or body.get("Code")
    code = body.get("__type") if code is None else code
    code = str(code).split(":", 1)[0].rsplit("#", 1)[-1] if code else str(status)
    message = body.get("message") or body.get("Message")
    if message is None:
        message = content.decode("utf-8", "replace")
    return code, str(message)
