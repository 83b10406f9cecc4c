"""Building the outgoing email of one request, and the hook that personalizes it.

A Personalizer receives the email as built from the stored message and returns it changed
for this one recipient (an open pixel, tracked links, List-Unsubscribe headers). The
dispatcher applies its personalizers in order; by default there are none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.dispatch.ses import REQUEST_ID_TAG, TOPIC_ID_TAG, OutgoingEmail
from service.events.types import MessageSubmitted

Personalizer = Callable[[OutgoingEmail, str, MessageSubmitted], OutgoingEmail]
"""(email, request_id, message) -> the email to send to that request's recipient."""


def build_email(
    sender: str,
    recipient: str,
    request_id: str,
    message: MessageSubmitted,
    personalizers: Sequence[Personalizer] = (),
) -> OutgoingEmail:
    """Build the email for one request and run it through `personalizers`."""
    tags = (
        (REQUEST_ID_TAG, request_id),
        (TOPIC_ID_TAG, message.topic_id),
        # A client's own tag of the same name would be sent twice, which SES rejects.
        *sorted(
            (name, value)
            for name, value in message.tags.items()
            if name not in (REQUEST_ID_TAG, TOPIC_ID_TAG)
        ),
    )
    email = OutgoingEmail(
        sender=sender,
        recipient=recipient,
        subject=message.subject,
        html=message.html,
        text=message.text,
        reply_to=message.reply_to,
        tags=tags,
    )
    for personalize in personalizers:
        email = personalize(email, request_id, message)
    return email
