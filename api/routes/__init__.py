"""API routes, split by concern."""
