"""The exception hierarchy: every error the service raises on purpose derives from ServiceError."""

from __future__ import annotations


class ServiceError(Exception):
    """Root of the errors raised by ses-sender."""


class ConfigError(ServiceError):
    """A setting is missing or invalid. The message names the variable, the value and the fix."""


class DatabaseError(ServiceError):
    """The database could not be reached or prepared."""


class MigrationError(DatabaseError):
    """A migration file is malformed or failed to apply."""


class EventDecodeError(ServiceError):
    """A stored event payload does not match its type."""

    def __init__(self, event_type: str, position: int, cause: Exception) -> None:
        super().__init__(f"event {position} of type {event_type!r} could not be decoded: {cause}")
        self.event_type = event_type
        self.position = position
