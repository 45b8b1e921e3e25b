"""Tickets as the API serves them: the schemas (:mod:`.models`) and the service."""
