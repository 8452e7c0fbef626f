"""Applies rule decisions: center entries, deliveries, timers, the unread counter, live events."""
