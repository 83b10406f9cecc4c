"""Local mode: the stand-ins for AWS that let `ses-sender run --local` work on one machine."""
