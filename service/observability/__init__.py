"""Operating the service: metrics (Prometheus), readiness checks and the logging set-up."""
