"""Human-facing output: console tables now; report.html with the curation issue."""
