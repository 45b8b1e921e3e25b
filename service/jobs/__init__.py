"""service/jobs."""
