"""Images and containers for the harness: a Docker engine (Debian's dockerd, started when none
answers), a base image (python:3.11-slim, or a debootstrap Debian rootfs with Python when no
registry answers), the app images built by content hash, the MinIO image, hardened containers
with wait strategies, label-based cleanup, and the pytest fixtures (`harness.containers.plugin`).
"""
