"""Sending: the due queue, the shared rate limiter and quota, the SES call and the dispatcher."""
