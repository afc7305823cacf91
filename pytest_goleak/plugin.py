"""pytest hooks, options, fixtures and markers."""
