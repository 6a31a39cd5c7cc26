"""Notifications: the inbox, the transactional outbox and push delivery (issue 6)."""
