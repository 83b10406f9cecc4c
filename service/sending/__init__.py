"""Submission and cancellation of emails: validation, the due queue writes, idempotency."""
