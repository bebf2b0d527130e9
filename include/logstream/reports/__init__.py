"""Human-readable renderings of what the batch runs compute (the hourly latency report's HTML)."""
