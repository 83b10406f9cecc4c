"""Reading the fields that several projections need from any event, known type or not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from service.events.types import Event, Feedback, UnknownEvent

# Feedback that the feedback handler could not link to a send when it arrived is recorded
# under this type, with the type of the feedback it carries in `event_type`.
# NOTE: when such feedback is linked later, its linked copy is counted under its topic and
# the held event stays counted in unlinked_events, which counts arrivals, not what is
# unlinked now. A linking event that names the held one would let both be reconciled.
HELD_FEEDBACK_TYPE = "FeedbackHeld"


def request_id_of(event: Event | UnknownEvent) -> str | None:
    value = _field(event, "request_id")
    return value if isinstance(value, str) and value else None


def topic_id_of(event: Event | UnknownEvent) -> str | None:
    value = _field(event, "topic_id")
    return value if isinstance(value, str) and value else None


def is_duplicate(event: Event | UnknownEvent) -> bool:
    """True for an open or click that another source already reported."""
    return _field(event, "duplicate") is True


def unlinked_feedback_type(type_name: str, event: Event | UnknownEvent) -> str | None:
    """Return the feedback type of feedback that names no request, else None."""
    if isinstance(event, Feedback) and event.request_id is None:
        return type_name
    if type_name == HELD_FEEDBACK_TYPE:
        carried = _field(event, "event_type")
        return carried if isinstance(carried, str) and carried else type_name
    return None


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour that `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _field(event: Event | UnknownEvent, name: str) -> Any:
    if isinstance(event, UnknownEvent):
        return _raw_fields(event).get(name)
    return getattr(event, name, None)


def _raw_fields(event: UnknownEvent) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(event.data)
    except msgspec.DecodeError:
        return {}
    return data if isinstance(data, dict) else {}
