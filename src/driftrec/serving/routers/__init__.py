"""One router per resource: events, users, items, health and metrics, admin."""
