"""The HTTP API: a Litestar app with one controller module per resource."""
