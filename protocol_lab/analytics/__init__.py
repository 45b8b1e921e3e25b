"""protocol_lab/analytics."""
