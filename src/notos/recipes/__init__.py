"""Shipped recipes (YAML) and the small Python steps they use."""
