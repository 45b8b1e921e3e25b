"""service/temporal."""
