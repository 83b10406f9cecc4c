"""The dispatcher's tracking step: pixel, tracked links and List-Unsubscribe on each email."""

from __future__ import annotations

import dataclasses

from service.config import Settings
from service.db.pool import Pool
from service.dispatch.personalize import Personalizer
from service.dispatch.ses import OutgoingEmail
from service.events.types import MessageSubmitted
from service.tracking.personalize import personalize
from service.tracking.secret import tracking_key


def tracking_personalizer(key: bytes, server_host: str) -> Personalizer:
    """Return the personalizer that adds this service's tracking to one recipient's email."""

    def add_tracking(
        email: OutgoingEmail, request_id: str, message: MessageSubmitted
    ) -> OutgoingEmail:
        tracked = personalize(
            email.html,
            request_id,
            track_clicks=message.track_clicks,
            unsubscribe=message.unsubscribe,
            key=key,
            server_host=server_host,
            text=email.text,
        )
        return dataclasses.replace(
            email,
            html=tracked.html if tracked.html is not None else email.html,
            text=tracked.text,
            headers=(*email.headers, *tracked.headers.items()),
        )

    return add_tracking


async def sending_personalizers(pool: Pool, settings: Settings) -> list[Personalizer]:
    """Build the personalizers every dispatcher applies, reading the tracking key once."""
    async with pool.connection() as conn:
        key = await tracking_key(conn, settings)
    return [tracking_personalizer(key, settings.server_host)]
