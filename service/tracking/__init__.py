"""Engagement tracking: signed tokens, the open pixel, tracked links and unsubscribe."""
