"""Notifications through Apprise: destinations, routing, the persistent outbox and its worker."""
