"""The Litestar application factory."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components

from service import __version__
from service.api.auth import SECURITY_SCHEME, SECURITY_SCHEME_NAME
from service.api.context import AppContext
from service.api.counts import sent_counts
from service.api.error_responses import document_error_responses
from service.api.errors import EXCEPTION_HANDLERS
from service.api.feedback import sns_results
from service.api.health import health, ready
from service.api.messages import MessagesController
from service.api.metrics import count_request, metrics
from service.api.nul import reject_nul_parameters
from service.api.suppressions import SuppressionController
from service.api.topic_cancel import cancel_topic_emails
from service.api.topics import get_topic, list_topics
from service.api.tracking import TrackingController, open_buffer_lifespan


def create_app(context: AppContext) -> Litestar:
    """Build the app around an open pool; the caller owns the pool's lifetime."""
    app = Litestar(
        route_handlers=[
            health,
            ready,
            metrics,
            MessagesController,
            cancel_topic_emails,
            sns_results,
            SuppressionController,
            TrackingController,
            get_topic,
            list_topics,
            sent_counts,
        ],
        state=State({"context": context}),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=context.settings.max_request_bytes,
        # service.logging configures the process; Litestar's default would replace its handlers.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="ses-sender",
            version=__version__,
            description="Email delivery on Amazon SES: submission, statistics, SES feedback.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(security_schemes={SECURITY_SCHEME_NAME: SECURITY_SCHEME}),
        ),
        lifespan=[open_buffer_lifespan],
        # The open pixel returns a GIF whatever its token, so its handler opts out.
        before_request=reject_nul_parameters,
        before_send=[count_request],
        on_app_init=[_no_debug],
    )
    document_error_responses(app)
    return app


def _no_debug(config: AppConfig) -> AppConfig:
    # Debug mode would put tracebacks into responses.
    config.debug = False
    return config
