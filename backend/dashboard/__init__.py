"""The coordinator dashboard: a static page served by the backend, and its settings endpoint."""
