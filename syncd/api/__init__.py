"""The HTTP layer: thin routers over syncd.service, auth, and error mapping."""
