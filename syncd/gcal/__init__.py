"""The Google Calendar mirror (SPEC §5). Each concern in its own module:
tokens (encryption at rest), oauth (consent), client (API access, errors, rate limits),
outbox (what changed), push (CRM → Google), pull (Google → CRM), watch (push channels),
mirror (connect, disconnect, state)."""
