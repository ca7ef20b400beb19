"""pytest plugin (entry point `mlops`): real containers and real clusters as fixtures.

Other repositories get the same fixtures by installing this package; options live in one
group, `mlops`, with one prefix.
"""

pytest_plugins = ["harness.containers.plugin", "harness.clusters.plugin"]
