"""Bootstrap one model family: its contract pinned, its first model trained and promoted."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from apps.bootstrap.errors import BootstrapError
from apps.bootstrap.sources import training_set
from apps.inference import FeatureSchema, ModelRegistry, train
from apps.inference.errors import ArtifactError
from apps.inference.families import declared_schema
from apps.inference.registry import describe
from environments.model import ModelContract

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    family: str
    version: str
    trained: bool  # False: the family already served a model of its contract
    contract: FeatureSchema

    def summary(self) -> dict[str, object]:
        return {"family": self.family, "version": self.version, "trained": self.trained,
                "features": self.contract.n_features, "classes": self.contract.classes}


def bootstrap(family: str, contract: ModelContract, registry: ModelRegistry) -> Outcome:
    """Idempotent: a family whose active version keeps its contract is left as it is."""
    schema = declared_schema(contract)
    if schema is not None:
        registry.declare(schema)  # ContractMismatch when the registry pinned another one
    active = registry.active_version()
    pinned = registry.contract()
    if active is not None:
        try:
            current = registry.load(active, expected_schema=pinned, with_sklearn=False)
        except ArtifactError as e:
            # No replica serves it (each holds the contract): a conforming model replaces it.
            log.warning("active_version_refused", family=family, version=active, error=str(e))
        else:
            kept = registry.declare(current.schema)  # pins a featurizer-defined contract too
            log.info("bootstrap_not_needed", family=family, version=active, schema=describe(kept))
            return Outcome(family=family, version=active, trained=False, contract=kept)
    data = training_set(contract)
    if schema is not None and data.schema != schema:
        raise BootstrapError(f"family {family!r}: its training source {contract.training.source!r} gives "
                             f"{describe(data.schema)}, but the family declares {describe(schema)}")
    log.info("bootstrap_training", family=family, source=contract.training.source, rows=len(data),
             classifier=contract.classifier, schema=describe(data.schema))
    trained = train(data, classifier=contract.classifier, seed=contract.training.seed)
    kept = registry.declare(trained.schema)
    version = registry.publish(trained)
    registry.promote(version)
    log.info("bootstrap_promoted", family=family, version=version, **trained.metrics.model_dump())
    return Outcome(family=family, version=version, trained=True, contract=kept)
