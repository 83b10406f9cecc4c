"""ses-sender: an email delivery service on Amazon SES with an event-sourced PostgreSQL core."""

__version__ = "0.1.0"
