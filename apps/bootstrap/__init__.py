"""Day one of a model family: its first model trained and promoted in the cluster.

One Job per family (an Argo CD Sync hook, before the apps) pins the family's contract in its
registry and, when no version is active, trains one from the declared source and promotes it.
Run again on every sync, it does nothing once the family serves a model of its contract.
"""
