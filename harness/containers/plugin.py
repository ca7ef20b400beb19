"""Container fixtures (Docker engine, images, MinIO, app containers)."""
