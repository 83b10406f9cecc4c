"""SES feedback through SNS: envelope parsing, signature verification, SES payload mapping,
linking to sent emails, and the suppression of bounced and complaining addresses."""
