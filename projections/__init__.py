"""Projections: read models derived from the event log, kept up to date by the runner.

Each projection reads events in log order from its checkpoint, updates its tables and moves
its checkpoint in the same transaction. The read models are `topic_stats`, `hourly_counts`
and `email_status`; `registry.PROJECTIONS` lists them by name.
"""
