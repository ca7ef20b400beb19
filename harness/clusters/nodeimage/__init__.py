"""kind's node image built offline from the toolchain (see build.py)."""

from harness.clusters.nodeimage.build import cluster_images, ensure_node_image

__all__ = ["cluster_images", "ensure_node_image"]
