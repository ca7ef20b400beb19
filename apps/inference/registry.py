"""A versioned model registry on any ObjectStore (a directory or an S3 bucket).

Layout under the registry URI:

    versions/<version>/model.onnx      the serving graph
    versions/<version>/model.pkl       the scikit-learn estimator (fallback runtime, retraining)
    versions/<version>/metadata.json   schema, metrics, training data hash, created time, file sha256s
    versions/<version>/CHECKSUM        sha256 of metadata.json, written last: a version without it
                                       is incomplete and invisible
    active.json                        the promoted version and the history rollback walks back
    contract.json                      the family's feature schema: every promoted version has it

    >>> registry = ModelRegistry("file:///tmp/example-models")
    >>> version = registry.publish(trained)          # doctest: +SKIP
    >>> registry.promote(version)                    # doctest: +SKIP
    >>> registry.load().metadata.metrics.roc_auc     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import pickle
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import onnx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.inference.dataset import FeatureSchema
from apps.inference.errors import ArtifactError, ContractMismatch, NoActiveVersion, RegistryError, SchemaMismatch
from apps.inference.training import ONNX_INPUT, ONNX_PROBABILITIES, Metrics, TrainedModel
from apps.storage import ObjectNotFound, ObjectStore, StorageError, open_store

ONNX_FILE = "model.onnx"
SKLEARN_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
CHECKSUM_FILE = "CHECKSUM"
ACTIVE_FILE = "active.json"
CONTRACT_FILE = "contract.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe(schema: FeatureSchema) -> str:
    """A schema in one line: count, the first names, classes."""
    names = ", ".join(schema.features[:3]) + (", ..." if schema.n_features > 3 else "")
    return f"{schema.n_features} features [{names}], classes {schema.classes}"


class FileDigest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ModelMetadata(BaseModel):
    """Everything recorded about one version; `files` pins the exact bytes of each artifact."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    classifier: str
    feature_schema: FeatureSchema
    metrics: Metrics
    training_data_hash: str
    seed: int
    created_at: datetime
    files: dict[str, FileDigest]
    libraries: dict[str, str]


class ActivePointer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    # Previously active versions, most recent last: what rollback walks back through.
    history: list[str] = []
    updated_at: datetime


@dataclass(frozen=True)
class ModelArtifact:
    """A verified model version: checksums matched and the ONNX graph agrees with the schema."""

    version: str
    metadata: ModelMetadata
    onnx_bytes: bytes
    sklearn_bytes: bytes = field(repr=False)

    @property
    def schema(self) -> FeatureSchema:
        return self.metadata.feature_schema

    @cached_property
    def sklearn_model(self) -> Any:
        # Only ever unpickled after its sha256 matched the checksummed metadata.
        return pickle.loads(self.sklearn_bytes)  # noqa: S301


def _libraries() -> dict[str, str]:
    import onnxruntime
    import skl2onnx
    import sklearn

    return {"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _new_version(now: datetime) -> str:
    # Sortable by time, unique across concurrent publishers.
    return f"v{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class ModelRegistry:
    """Publish, verify, promote and roll back model versions on `uri` (file:// or s3://)."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None, store: ObjectStore | None = None) -> None:
        self.uri = uri
        # `store`: an already opened store (explicit credentials, tests); default: open `uri`.
        self.store = store if store is not None else open_store(uri, endpoint_url=endpoint_url)

    # ------------------------------------------------------------ writing

    def publish(self, trained: TrainedModel) -> str:
        """Store a trained model as a new version (not yet active) and return its version id."""
        now = datetime.now(UTC)
        version = _new_version(now)
        files = {ONNX_FILE: trained.to_onnx(), SKLEARN_FILE: pickle.dumps(trained.estimator, protocol=5)}
        metadata = ModelMetadata(
            version=version,
            classifier=trained.classifier,
            feature_schema=trained.schema,
            metrics=trained.metrics,
            training_data_hash=trained.training_data_hash,
            seed=trained.seed,
            created_at=now,
            files={name: FileDigest(sha256=_sha256(data), size=len(data)) for name, data in files.items()},
            libraries=_libraries(),
        )
        meta_bytes = metadata.model_dump_json(indent=2).encode()
        for name, data in files.items():
            self.store.put_bytes(self._key(version, name), data)
        self.store.put_bytes(self._key(version, METADATA_FILE), meta_bytes)
        self.store.put_bytes(self._key(version, CHECKSUM_FILE), f"{_sha256(meta_bytes)}\n".encode())
        return version

    def declare(self, schema: FeatureSchema) -> FeatureSchema:
        """Pin the family's contract (first call), or check it is `schema`; ContractMismatch otherwise.

        A family keeps its schema for life: a model of another schema is another family, so that
        no replica can ever serve a different schema from its siblings.
        """
        current = self.contract()
        if current is None:
            self.store.put_bytes(CONTRACT_FILE, schema.model_dump_json(indent=2).encode())
            return schema
        if current != schema:
            raise ContractMismatch(f"{self.uri}: the family's contract is {describe(current)}, not {describe(schema)}: "
                                   "a model of another schema is another family (its own registry URI)")
        return current

    def contract(self) -> FeatureSchema | None:
        """The family's contract, None before its first declaration."""
        try:
            raw = self.store.get_bytes(CONTRACT_FILE)
        except ObjectNotFound:
            return None
        try:
            return FeatureSchema.model_validate_json(raw)
        except ValidationError as e:
            raise RegistryError(f"{self.uri}: {CONTRACT_FILE} is unreadable ({e.errors()[0]['msg']}); restore it "
                                "from the store's history") from None

    def _check_contract(self, version: str) -> None:
        """Refuse `version` where its schema differs from the family's contract."""
        contract = self.contract()
        if contract is None:
            return
        schema = self.load(version, with_sklearn=False).schema
        if schema != contract:
            raise ContractMismatch(f"{self.uri}: version {version!r} takes {describe(schema)}, but the family's "
                                   f"contract is {describe(contract)}: not promoted; train it on the contract's "
                                   "features or publish it to another family")

    def promote(self, version: str) -> None:
        """Make `version` the one servers load; it is verified first, so a corrupt one, or one that
        breaks the family's contract, is never promoted."""
        self.load(version)
        self._check_contract(version)
        try:
            current = self._read_active()
        except NoActiveVersion:
            current = None
        if current is not None and current.version == version:
            return
        history = [*current.history, current.version] if current else []
        self._write_active(ActivePointer(version=version, history=history, updated_at=datetime.now(UTC)))

    def rollback(self) -> str:
        """Re-activate the previously active version and return it."""
        current = self._read_active()
        history = list(current.history)
        while history:
            previous = history.pop()
            if previous == current.version:
                continue
            self.load(previous)  # refuses to roll back onto a version that has since been corrupted
            self._check_contract(previous)
            self._write_active(ActivePointer(version=previous, history=history, updated_at=datetime.now(UTC)))
            return previous
        raise RegistryError(
            f"{self.uri}: nothing to roll back to: version {current.version!r} is the only one ever promoted; "
            "publish and promote another version instead"
        )

    # ------------------------------------------------------------ reading

    def versions(self) -> list[str]:
        """Complete versions (their CHECKSUM written), oldest first."""
        keys = self.store.list("versions/")
        return sorted(k.split("/")[1] for k in keys if k.endswith(f"/{CHECKSUM_FILE}") and k.count("/") == 2)

    def active_version(self) -> str | None:
        pointer = self.active_pointer()
        return pointer.version if pointer else None

    def active_pointer(self) -> ActivePointer | None:
        """The active version and the history rollback walks back through (None before a promotion)."""
        try:
            return self._read_active()
        except NoActiveVersion:
            return None

    def history(self) -> list[str]:
        try:
            pointer = self._read_active()
        except NoActiveVersion:
            return []
        return [*pointer.history, pointer.version]

    def load(self, version: str | None = None, *, expected_schema: FeatureSchema | None = None,
             with_sklearn: bool = True) -> ModelArtifact:
        """Read and verify a version (default: the active one); refuse it if anything does not match."""
        if version is None:
            version = self._read_active().version
        if not self.store.exists(self._key(version, CHECKSUM_FILE)):
            known = self.versions()
            if not self.store.list(f"versions/{version}/"):
                raise RegistryError(f"{self.uri}: no model version {version!r}; known versions: {known or 'none'}")
            raise ArtifactError(f"{CHECKSUM_FILE} is missing: the version is incomplete or corrupt; republish it",
                                uri=self.uri, version=version)
        meta_bytes = self._get(version, METADATA_FILE)
        recorded = self._get(version, CHECKSUM_FILE).decode(errors="replace").strip()
        if _sha256(meta_bytes) != recorded:
            raise ArtifactError(
                f"{METADATA_FILE} sha256 {_sha256(meta_bytes)[:12]}... does not match {CHECKSUM_FILE} "
                f"{recorded[:12]}...: the metadata is corrupt; republish the version or promote another",
                uri=self.uri, version=version)
        try:
            metadata = ModelMetadata.model_validate_json(meta_bytes)
        except ValidationError as e:
            raise ArtifactError(f"{METADATA_FILE} is not valid metadata: {e}", uri=self.uri, version=version) from e
        if metadata.version != version:
            raise ArtifactError(f"{METADATA_FILE} says version {metadata.version!r}: the files were copied from "
                                "another version", uri=self.uri, version=version)
        wanted = [ONNX_FILE, SKLEARN_FILE] if with_sklearn else [ONNX_FILE]
        blobs = {}
        for name in wanted:
            digest = metadata.files.get(name)
            if digest is None:
                raise ArtifactError(f"{METADATA_FILE} records no {name}", uri=self.uri, version=version)
            data = self._get(version, name)
            if _sha256(data) != digest.sha256 or len(data) != digest.size:
                raise ArtifactError(
                    f"{name} sha256 {_sha256(data)[:12]}... ({len(data)} bytes) does not match the recorded "
                    f"{digest.sha256[:12]}... ({digest.size} bytes): the file is corrupt; republish the version "
                    "or promote another", uri=self.uri, version=version)
            blobs[name] = data
        self._check_onnx_schema(version, blobs[ONNX_FILE], metadata.feature_schema)
        if expected_schema is not None and expected_schema != metadata.feature_schema:
            raise SchemaMismatch(
                f"feature schema {describe(metadata.feature_schema)} differs from the expected "
                f"{describe(expected_schema)}; promote a version trained on the expected schema",
                uri=self.uri, version=version)
        return ModelArtifact(version=version, metadata=metadata, onnx_bytes=blobs[ONNX_FILE],
                             sklearn_bytes=blobs.get(SKLEARN_FILE, b""))

    # ------------------------------------------------------------ internals

    def _check_onnx_schema(self, version: str, onnx_bytes: bytes, schema: FeatureSchema) -> None:
        try:
            graph = onnx.load_model(io.BytesIO(onnx_bytes)).graph
        except Exception as e:  # onnx raises DecodeError and others for garbage bytes
            raise ArtifactError(f"{ONNX_FILE} is not a readable ONNX model: {e}", uri=self.uri, version=version) from e

        def dims(values: Any, name: str) -> list[int | None] | None:
            for v in values:
                if v.name == name:
                    return [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            return None

        in_dims, out_dims = dims(graph.input, ONNX_INPUT), dims(graph.output, ONNX_PROBABILITIES)
        expected_in, expected_out = [None, schema.n_features], [None, len(schema.classes)]
        if in_dims != expected_in or out_dims not in (expected_out, [None, None]):
            raise SchemaMismatch(
                f"{ONNX_FILE} takes {ONNX_INPUT}{in_dims} and gives {ONNX_PROBABILITIES}{out_dims}, but the "
                f"metadata's schema needs {expected_in} -> {expected_out}; republish the version",
                uri=self.uri, version=version)

    def _key(self, version: str, name: str) -> str:
        return f"versions/{version}/{name}"

    def _get(self, version: str, name: str) -> bytes:
        try:
            return self.store.get_bytes(self._key(version, name))
        except ObjectNotFound as e:
            raise ArtifactError(f"{name} is missing", uri=self.uri, version=version) from e
        except StorageError as e:
            raise RegistryError(f"{self.uri}: cannot read version {version!r}: {e}") from e

    def _read_active(self) -> ActivePointer:
        try:
            raw = self.store.get_bytes(ACTIVE_FILE)
        except ObjectNotFound:
            raise NoActiveVersion(f"{self.uri}: no version has been promoted yet; run `mlops apps registry "
                                  "promote VERSION`") from None
        try:
            return ActivePointer.model_validate_json(raw)
        except ValidationError as e:
            raise RegistryError(f"{self.uri}: {ACTIVE_FILE} is unreadable ({e}); promote a version again") from e

    def _write_active(self, pointer: ActivePointer) -> None:
        self.store.put_bytes(ACTIVE_FILE, pointer.model_dump_json(indent=2).encode())
