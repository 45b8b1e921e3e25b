"""protocol_lab/sim."""
