"""Cluster fixtures (kwok, kind, existing) and deploy helpers."""
