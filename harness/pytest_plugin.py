"""pytest plugin: fixtures for real containers and clusters (filled in by the harness issues)."""
