"""The typed description of one environment: the single source every room reads.

Infra reads `aws` and `node_groups`, apps and argocd read `apps`, `sizing`, `images` and
`gitops`, the harness reads `node_groups` (to shape simulated nodes) and `perf`.
Nothing here imports anything but pydantic: the arrows point away from this module.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from environments.instances import INSTANCE_SHAPES, InstanceShape
from environments.quantities import checked_cpu, checked_memory, cpu_millis, memory_bytes

EnvName = Literal["local", "dev", "staging", "prod"]
SizingStrategy = Literal["minimal", "balanced", "performance"]
WorkloadClass = Literal["api", "worker", "job"]
Classifier = Literal["random_forest", "logistic_regression"]
LoadProfileName = Literal["single", "batch", "mixed", "scale"]
# A model family has its own registry (its own active version) and its own contract (models:
# below): the inference API serves `inference` (seed 001's 20 features), the fraud pipeline's
# inference stage `fraud` (17 transaction features), the batch pipeline `pcc` (case vectors).
ModelFamily = Literal["inference", "fraud", "pcc"]
# Where a family's first model comes from (apps/bootstrap): a synthetic dataset of the declared
# features, synthetic card transactions featurised as the fraud stages do, synthetic PCC cases.
TrainingSource = Literal["synthetic", "fraud_transactions", "pcc_cases"]

# Kubernetes quantities ("250m", "1"; "512Mi"), checked by the parser every room computes with.
CpuQuantity = Annotated[str, AfterValidator(checked_cpu)]
MemoryQuantity = Annotated[str, AfterValidator(checked_memory)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
Cron = Annotated[str, Field(pattern=r"^(\S+\s+){4}\S+$")]
# An image's content digest as a registry reports it on push.
IMAGE_DIGEST = r"^sha256:[0-9a-f]{64}$"
ImageDigest = Annotated[str, Field(pattern=IMAGE_DIGEST)]
Version = Annotated[str, Field(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$")]
# The ways in to the inference API (InferenceApi.expose).
Expose = Literal["cluster_ip", "node_port", "load_balancer", "ingress"]


class Strict(BaseModel):
    """Unknown keys and loose types are errors: a typo in an environment file never passes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------- cloud (absent for `local`)


class Tags(Strict):
    project: str
    owner: str
    cost_centre: str
    extra: dict[str, str] = {}


class Network(Strict):
    vpc_cidr: str
    az_count: int = Field(ge=1, le=6)
    nat: Literal["none", "single", "per_az"]
    flow_logs: bool = True
    # An explicit layout, one CIDR per AZ in AZ order (seed 001: 10.0.1.0/24, 10.0.2.0/24 public,
    # 10.0.10.0/24, 10.0.11.0/24 private); None: computed from vpc_cidr (infra/network.py).
    public_subnet_cidrs: list[str] | None = None
    private_subnet_cidrs: list[str] | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value)
        except ValueError as e:
            raise ValueError(f"not an IPv4 CIDR: {e}") from None
        if not 16 <= net.prefixlen <= 22:
            raise ValueError(f"VPC prefix must be /16../22 to hold the subnets, got /{net.prefixlen}")
        return value

    @field_validator("public_subnet_cidrs", "private_subnet_cidrs")
    @classmethod
    def _subnets(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        vpc_cidr, az_count = info.data.get("vpc_cidr"), info.data.get("az_count")
        if vpc_cidr is None or az_count is None:
            return value  # their own errors are reported
        if len(value) != az_count:
            raise ValueError(f"{len(value)} CIDRs for az_count {az_count}: expected one per AZ")
        vpc = ipaddress.IPv4Network(vpc_cidr)
        # The public tier is validated first: the private one must not overlap it either.
        earlier = [ipaddress.IPv4Network(c) for c in info.data.get("public_subnet_cidrs") or []]
        for i, cidr in enumerate(value):
            try:
                net = ipaddress.IPv4Network(cidr)
            except ValueError as e:
                raise ValueError(f"[{i}] {cidr!r} is not an IPv4 CIDR ({e})") from None
            if not net.subnet_of(vpc):
                raise ValueError(f"[{i}] {cidr} is not inside vpc_cidr {vpc_cidr}")
            if net.prefixlen > 28:
                raise ValueError(f"[{i}] {cidr}: a subnet is /28 at the smallest (EKS needs room for ENIs)")
            clash = next((other for other in earlier if net.overlaps(other)), None)
            if clash is not None:
                raise ValueError(f"[{i}] {cidr} overlaps {clash}")
            earlier.append(net)
        return value

    @model_validator(mode="after")
    def _layout_whole(self) -> Network:
        if (self.public_subnet_cidrs is None) != (self.private_subnet_cidrs is None):
            raise ValueError("public_subnet_cidrs and private_subnet_cidrs are set together (or neither, for the "
                             "computed layout)")
        return self

    def subnet_prefix(self) -> int:
        """Subnet size: the VPC split into room for a public and a private subnet per AZ (max 6 AZs)."""
        return ipaddress.IPv4Network(self.vpc_cidr).prefixlen + 4


class Cluster(Strict):
    name: DnsLabel
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.[0-9]{2}$")]
    endpoint_public: bool
    public_access_cidrs: list[str] = []
    deletion_protection: bool
    log_types: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]]
    identity: Literal["pod_identity", "irsa"]
    # IAM principals given cluster-admin through EKS access entries (the creator always is).
    admin_principal_arns: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$")]] = []

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError as e:
                raise ValueError(f"not an IPv4 CIDR: {cidr!r} ({e})") from None
        return value


class Aws(Strict):
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")]
    account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    network: Network
    cluster: Cluster
    argocd_chart_version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    # CloudWatch retention of control-plane and VPC flow logs (values CloudWatch accepts).
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653] = 30


# ---------------------------------------------------------------- compute


class Taint(Strict):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


GPU_TAINT = Taint(key="nvidia.com/gpu", value="true", effect="NoSchedule")


class NodeGroup(Strict):
    kind: Literal["cpu", "gpu"]
    instance_types: list[str] = Field(min_length=1)
    capacity: Literal["on_demand", "spot"] = "on_demand"
    min_size: int = Field(ge=0)
    desired_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    disk_size_gb: int = Field(default=50, ge=20)
    labels: dict[str, str] = {}
    taints: list[Taint] = []

    @field_validator("instance_types")
    @classmethod
    def _known_instances(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in INSTANCE_SHAPES]
        if unknown:
            raise ValueError(f"unknown instance type {unknown[0]!r}; known: {', '.join(sorted(INSTANCE_SHAPES))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"sizes must satisfy min_size <= desired_size <= max_size, got "
                f"{self.min_size} <= {self.desired_size} <= {self.max_size}"
            )
        shapes = [INSTANCE_SHAPES[t] for t in self.instance_types]
        if self.kind == "gpu":
            if any(s.gpus == 0 for s in shapes):
                raise ValueError("a gpu node group may only use GPU instance types")
            if GPU_TAINT not in self.taints:
                raise ValueError("a gpu node group must carry the taint nvidia.com/gpu=true:NoSchedule")
        elif any(s.gpus for s in shapes):
            raise ValueError("a cpu node group may not use GPU instance types")
        return self

    @property
    def shape(self) -> InstanceShape:
        """The smallest instance type of the group: what a scheduler can count on."""
        return min((INSTANCE_SHAPES[t] for t in self.instance_types), key=lambda s: (s.cpu, s.memory_gib))


# ---------------------------------------------------------------- workloads


class ResourceAmounts(Strict):
    cpu: CpuQuantity
    memory: MemoryQuantity

    @property
    def cpu_millis(self) -> int:
        return cpu_millis(self.cpu)

    @property
    def memory_mib(self) -> float:
        return memory_bytes(self.memory) / 2**20


class Resources(Strict):
    requests: ResourceAmounts
    limits: ResourceAmounts


class Autoscaling(Strict):
    min_replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    cpu_utilization: int = Field(ge=1, le=100)
    memory_utilization: int = Field(ge=1, le=100)
    scale_up_stabilization_s: int = Field(ge=0)
    scale_down_stabilization_s: int = Field(ge=0)

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}")
        return self


class InferenceApi(Strict):
    enabled: bool = True
    namespace: DnsLabel
    sizing: SizingStrategy
    # The family it serves; its contract must be the one the API's clients send (`features`).
    model_family: ModelFamily = "inference"
    # What a request carries: a count (names f0, f1, ...) or the names in order (seed 001: 20).
    features: int | list[str]
    port: int = Field(ge=1024, le=65535)
    autoscaling: Autoscaling
    pdb_min_available: int = Field(ge=0)
    # How the API is reached beyond its ClusterIP Service, one way or a list of them (seed 001 has
    # both `[load_balancer, ingress]`); cluster_ip alone: from inside the cluster only.
    # node_port: local clusters only (the host's way in; no load balancer there).
    expose: list[Expose] = Field(min_length=1)
    ingress_host: str | None = None
    batch_limit: int = Field(ge=1, le=10_000)
    reload_interval_s: float = Field(gt=0)
    # The widest record the API should accept: with batch_limit it sizes the request-body limit.
    max_features: int = Field(default=64, ge=1, le=100_000)
    max_body_bytes: int | None = Field(default=None, ge=1024)  # default: body_limit below
    # Connections the server holds at once (beyond them: 503), and how long a client may take to
    # send its request headers or stay idle between requests before the server closes it.
    max_connections: int = Field(default=512, ge=16, le=100_000)
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    keep_alive_s: float = Field(default=5.0, gt=0, le=300)
    # A test-only setting of the API (added latency / error rate); refused in production.
    fault_injection_allowed: bool = False

    @property
    def body_limit(self) -> int:
        """max_body_bytes, else a full batch of max_features-wide records at 32 bytes a number
        (a float32 in JSON takes at most ~16) plus room for the envelope."""
        return self.max_body_bytes or self.batch_limit * self.max_features * 32 + 4096

    @field_validator("expose", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("expose")
    @classmethod
    def _ways_in(cls, value: list[Expose]) -> list[Expose]:
        if len(set(value)) != len(value):
            raise ValueError(f"lists a way in twice: {value}")
        if "cluster_ip" in value and len(value) > 1:
            raise ValueError(f"cluster_ip means no way in from outside the cluster: drop it from {value}")
        return value

    @model_validator(mode="after")
    def _expose(self) -> InferenceApi:
        if "ingress" in self.expose and not self.ingress_host:
            raise ValueError("expose: ingress needs ingress_host")
        if self.pdb_min_available >= self.autoscaling.min_replicas:
            raise ValueError(
                f"pdb_min_available ({self.pdb_min_available}) must be below autoscaling.min_replicas "
                f"({self.autoscaling.min_replicas}) or no node can ever be drained"
            )
        return self


class BatchPipeline(Strict):
    enabled: bool = True
    namespace: DnsLabel
    sizing: SizingStrategy
    schedule: Cron
    time_zone: str = "UTC"
    active_deadline_s: int = Field(ge=60)
    backoff_limit: int = Field(ge=0)
    backfill_parallelism: int = Field(ge=1)
    source: Literal["sample", "parquet"]
    dry_run: bool = False
    long_running: bool = False


class FraudStageReplicas(Strict):
    data_gather: int = Field(ge=0)
    preprocessing: int = Field(ge=0)
    inference: int = Field(ge=0)
    model_build: int = Field(ge=0)


class FraudPipeline(Strict):
    enabled: bool = True
    namespace: DnsLabel
    sizing: SizingStrategy
    replicas: FraudStageReplicas
    # Run the GPU variants where the environment has a gpu node group; CPU variants otherwise.
    use_gpu: bool
    gpus_per_pod: int = Field(default=1, ge=1)
    lease_s: int = Field(ge=1)
    max_attempts: int = Field(ge=1)
    # The inference workers' HPA (seed 004: workers 2-20); replicas.inference is where they start,
    # 0 stops the stage (and drops its HPA). null: fixed at replicas.inference.
    inference_autoscaling: Autoscaling | None = None

    @model_validator(mode="after")
    def _inference_within_bounds(self) -> FraudPipeline:
        scaling, start = self.inference_autoscaling, self.replicas.inference
        if scaling is not None and start and not scaling.min_replicas <= start <= scaling.max_replicas:
            raise ValueError(
                f"replicas.inference ({start}) must lie within inference_autoscaling "
                f"{scaling.min_replicas}..{scaling.max_replicas} (or be 0 to stop the stage)"
            )
        return self

    @property
    def inference_peak(self) -> int:
        """The most inference workers that may run: the HPA's maximum while it scales them."""
        scaling = self.inference_autoscaling
        return scaling.max_replicas if scaling is not None and self.replicas.inference else self.replicas.inference


class Cleanup(Strict):
    enabled: bool = True
    # Runs in the batch pipeline's namespace (it prunes that pipeline's data); sized as a job.
    sizing: SizingStrategy = "minimal"
    schedule: Cron
    success_retention_hours: int = Field(ge=1)
    failed_retention_hours: int = Field(ge=1)
    dry_run: bool = False


class Apps(Strict):
    inference_api: InferenceApi
    batch_pipeline: BatchPipeline
    fraud_pipeline: FraudPipeline
    cleanup: Cleanup


# ---------------------------------------------------------------- model families


class ModelTraining(Strict):
    """Where a family's first model comes from, trained in the cluster by its bootstrap Job."""

    source: TrainingSource
    rows: int = Field(ge=100, le=1_000_000)
    seed: int = Field(default=0, ge=0)
    # pcc_cases only: the case vectors' embedder, the same the batch pipeline computes them with.
    embedder: Literal["minilm", "hashing"] | None = None
    # The Job's requests and limits: the strategy's `job` class.
    sizing: SizingStrategy = "balanced"

    @model_validator(mode="after")
    def _embedder(self) -> ModelTraining:
        if (self.source == "pcc_cases") != (self.embedder is not None):
            raise ValueError(f"embedder is set for the pcc_cases source only (source is {self.source!r}, "
                             f"embedder {self.embedder!r})")
        return self


class ModelContract(Strict):
    """A model family's contract: every version its registry promotes takes these features and
    gives these classes, so no replica ever serves a different schema from its siblings."""

    # A count (names f0, f1, ...) or the names in order; omitted where the training source
    # defines them (pcc_cases: the featurizer's), then pinned in the registry by the first model.
    features: int | list[str] | None = None
    classes: list[int] = Field(default=[0, 1], min_length=2)
    classifier: Classifier
    training: ModelTraining

    @field_validator("features")
    @classmethod
    def _features(cls, value: int | list[str] | None) -> int | list[str] | None:
        if isinstance(value, int) and not 1 <= value <= 100_000:
            raise ValueError(f"a feature count is 1..100000, got {value}")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("feature names: at least one, each once")
        return value

    @model_validator(mode="after")
    def _source_defines(self) -> ModelContract:
        if (self.features is None) != (self.training.source == "pcc_cases"):
            raise ValueError("features are declared for every training source but pcc_cases, whose featurizer "
                             f"defines them (source {self.training.source!r}, features {self.features!r})")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes are unique, got {self.classes}")
        return self

    @property
    def feature_names(self) -> list[str] | None:
        return feature_names(self.features)


def feature_names(features: int | list[str] | None) -> list[str] | None:
    """A declared feature list: the names, with a count meaning f0 .. f<count-1>."""
    if isinstance(features, int):
        return [f"f{i}" for i in range(features)]
    return None if features is None else list(features)


def _features(names: list[str] | None) -> str:
    return "features defined by its featurizer" if names is None else f"{len(names)} features [{', '.join(names[:3])}, ...]"


def _schema(names: list[str] | None, classes: list[int]) -> str:
    return f"{_features(names)}, classes {classes}"


# ---------------------------------------------------------------- storage, images, gitops


class SharedVolume(Strict):
    size: MemoryQuantity
    storage_class: str | None = None
    # RWX when the storage class supports it; RWO forces every stage onto one node (fraud seed).
    read_write_many: bool


class Storage(Strict):
    data_uri: Annotated[str, Field(pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file://.+)$")]
    models_uri: Annotated[str, Field(pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file://.+)$")]
    # S3-compatible endpoint (MinIO) for local stores; None means AWS S3 itself.
    endpoint_url: str | None = None
    retention_days: int = Field(ge=1)
    versioning: bool
    shared_volume: SharedVolume


class Images(Strict):
    # Registry prefix ("123456789012.dkr.ecr.ap-southeast-2.amazonaws.com", "localhost:5001").
    registry: str = ""
    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    pull_policy: Literal["IfNotPresent", "Never", "Always"]
    # Image name -> the digest its push reported (`mlops images push`): the tree then names
    # `<registry>/<name>@<digest>`, what was pushed and nothing else. Set by the stack, not in files.
    digests: dict[str, ImageDigest] = {}

    @field_validator("tag")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("images are pinned: 'latest' is not a tag we deploy")
        return value


class GitOps(Strict):
    # A remote URL, or a local path ('~' expanded) to a bare repository created on first publish.
    repo_url: str
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]
    path: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")]
    argocd_namespace: DnsLabel
    # The one Argo CD version: what the cloud chart runs (its image tag), what the harness builds
    # for local clusters, and the CRD schemas the tree is validated against.
    argocd_version: Version
    # How often Argo CD looks for new commits (argocd-cm timeout.reconciliation) where no webhook
    # tells it; 180 s is Argo CD's own default.
    poll_interval_s: int = Field(default=180, ge=5, le=3600)


# ---------------------------------------------------------------- platform add-ons


class MetricsServer(Strict):
    """Resource metrics for the HPAs and `kubectl top` (EKS ships none)."""

    enabled: bool = True
    version: Version
    # Repository of the image; its tag is `version` (a local cluster holds a build of the same version).
    image: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$")]
    # Two keep the metrics API served through a node drain (with a PodDisruptionBudget).
    replicas: int = Field(default=2, ge=1, le=10)
    # kind's kubelets serve self-signed certificates; EKS signs them with the cluster's CA.
    kubelet_insecure_tls: bool = False


ChartVersion = Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]


class PrometheusCrds(Strict):
    """The Prometheus operator's monitoring CRDs, so the apps' ServiceMonitors apply on a fresh
    cluster (EKS and kind ship none). Rendered from the operator's pinned Go module."""

    enabled: bool = True
    version: Version


class ChartAddon(Strict):
    """An upstream Helm chart Argo CD installs (the GitOps Bridge way): cloud-only, since its
    chart repository and images are AWS's; an environment without an aws block leaves it out."""

    enabled: bool = True
    chart_version: ChartVersion


class LoadBalancerController(ChartAddon):
    """Turns the API's `alb` Ingress and `external` (NLB) Service into AWS load balancers."""

    replicas: int = Field(default=2, ge=1, le=10)


class EbsCsiDriver(ChartAddon):
    """gp3 volumes for ReadWriteOnce claims, through a default StorageClass."""

    storage_class: DnsLabel = "gp3"


class EfsCsiDriver(ChartAddon):
    """The shared (ReadWriteMany) volume of the fraud pipeline: an EFS file system, one mount
    target per private subnet, and a StorageClass that provisions an access point per claim."""

    storage_class: DnsLabel = "efs-sc"
    performance_mode: Literal["generalPurpose", "maxIO"] = "generalPurpose"
    throughput_mode: Literal["elastic", "bursting"] = "elastic"


class ExternalSecrets(ChartAddon):
    """Application secrets from AWS Secrets Manager, delivered as Kubernetes Secrets."""

    # How often a changed secret reaches its Kubernetes Secret.
    refresh_interval_s: int = Field(default=3600, ge=60, le=86_400)


class CloudWatchObservability(ChartAddon):
    """Container Insights: the CloudWatch agent (metrics) and Fluent Bit (logs) on every node."""


class ClusterAutoscaler(ChartAddon):
    """Sizes the node groups to pending pods (GPU groups from zero)."""


class NvidiaDevicePlugin(ChartAddon):
    """Advertises `nvidia.com/gpu` on the GPU node groups."""


class VpcCni(Strict):
    """The cluster's network (an EKS managed add-on, configured by Pulumi: it runs before any pod)."""

    # The CNI's network policy agent: without it every NetworkPolicy of ours is inert.
    network_policy: bool = True


class Addons(Strict):
    """Platform pieces the apps need, installed by Argo CD from the GitOps tree like the apps.

    Where a local cluster has an equivalent it uses the same declaration (metrics-server, the
    Prometheus CRDs); chart add-ons are cloud-only (see `ChartAddon`)."""

    metrics_server: MetricsServer
    prometheus_crds: PrometheusCrds
    aws_load_balancer_controller: LoadBalancerController
    ebs_csi_driver: EbsCsiDriver
    efs_csi_driver: EfsCsiDriver
    external_secrets: ExternalSecrets
    cloudwatch_observability: CloudWatchObservability
    cluster_autoscaler: ClusterAutoscaler
    nvidia_device_plugin: NvidiaDevicePlugin
    vpc_cni: VpcCni = VpcCni()


# ---------------------------------------------------------------- performance gates


class EndpointThreshold(Strict):
    p95_ms: float = Field(gt=0)
    p99_ms: float = Field(gt=0)


class LoadProfile(Strict):
    users: int = Field(ge=1)
    spawn_rate: float = Field(gt=0)
    duration_s: int = Field(ge=5)
    max_requests: int = Field(ge=1)
    min_rps: float = Field(ge=0)
    failure_ratio: float = Field(ge=0, le=1)
    # Records per request to /v1/predict/batch (at most apps.inference_api.batch_limit).
    batch_size: int = Field(default=32, ge=1)
    # Requests/s each user aims at (think time between calls); None: the next request leaves as soon
    # as the last one answers (a closed loop that measures capacity, and queueing with it).
    user_rps: float | None = Field(default=None, gt=0)
    endpoints: dict[str, EndpointThreshold] = Field(min_length=1)


class Perf(Strict):
    profiles: dict[LoadProfileName, LoadProfile]
    # Flag a slowdown when throughput drops or p95 grows beyond this ratio of the baseline.
    regression_ratio: float = Field(gt=1)
    # Latency differences below this are noise, not a slowdown, whatever their ratio.
    regression_floor_ms: float = Field(default=5.0, ge=0)


# ---------------------------------------------------------------- the environment


class Environment(Strict):
    name: EnvName
    production: bool
    # Every app's LOG_LEVEL (seed 004: debug in dev).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    tags: Tags
    aws: Aws | None = None
    node_groups: dict[DnsLabel, NodeGroup] = Field(min_length=1)
    sizing: dict[SizingStrategy, dict[WorkloadClass, Resources]]
    apps: Apps
    models: dict[ModelFamily, ModelContract]
    storage: Storage
    images: Images
    gitops: GitOps
    addons: Addons
    perf: Perf

    @field_validator("sizing")
    @classmethod
    def _complete_sizing(cls, value: dict[str, dict[str, Resources]]) -> dict[str, dict[str, Resources]]:
        for strategy in SizingStrategy.__args__:  # type: ignore[attr-defined]
            missing = [c for c in WorkloadClass.__args__ if c not in value.get(strategy, {})]  # type: ignore[attr-defined]
            if missing:
                raise ValueError(f"strategy {strategy!r} lacks workload classes {missing}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Environment:
        if self.name == "local" and self.aws is not None:
            raise ValueError("the local environment has no cloud: remove the aws block")
        if self.name != "local" and self.aws is None:
            raise ValueError(f"environment {self.name!r} needs an aws block")
        if self.aws is not None and "node_port" in self.apps.inference_api.expose:
            raise ValueError("apps.inference_api.expose: node_port is for local clusters; in the cloud use "
                             "load_balancer or ingress")
        volume, efs = self.storage.shared_volume, self.addons.efs_csi_driver
        if (self.aws is not None and self.apps.fraud_pipeline.enabled and volume.storage_class == efs.storage_class
                and not efs.enabled):
            # Seed 002's failure story: the claim stays Pending and every fraud pod with it.
            raise ValueError(f"storage.shared_volume.storage_class is {volume.storage_class!r}, the EFS add-on's class, "
                             "but addons.efs_csi_driver.enabled is false: enable it or name another class")
        if self.production and self.apps.inference_api.fault_injection_allowed:
            raise ValueError("apps.inference_api.fault_injection_allowed is refused in production")
        if not any(g.kind == "cpu" for g in self.node_groups.values()):
            raise ValueError("node_groups needs at least one cpu group")
        if self.apps.fraud_pipeline.enabled and self.apps.fraud_pipeline.use_gpu and not self.has_gpu:
            # Else the CPU variants would run in silence where the operator asked for GPUs.
            raise ValueError("apps.fraud_pipeline.use_gpu is true but node_groups has no group of kind gpu: "
                             "add one or set use_gpu: false")
        self._models_declared()
        for profile_name, profile in self.perf.profiles.items():
            if profile.batch_size > self.apps.inference_api.batch_limit:
                raise ValueError(
                    f"perf.profiles.{profile_name}.batch_size ({profile.batch_size}) exceeds "
                    f"apps.inference_api.batch_limit ({self.apps.inference_api.batch_limit})"
                )
        return self

    @model_validator(mode="after")
    def _fits_its_nodes(self) -> Environment:
        """Pods that fit no node stay Pending forever, and a cluster shows it only after a deploy."""
        cpu_groups = [g for g in self.node_groups.values() if g.kind == "cpu"]
        apps = self.apps
        for field, app, workload in (
            ("apps.inference_api", apps.inference_api, "api"),
            ("apps.batch_pipeline", apps.batch_pipeline, "job"),
            ("apps.fraud_pipeline", apps.fraud_pipeline, "worker"),
            ("apps.cleanup", apps.cleanup, "job"),
        ):
            if app.enabled:
                _require_fit(f"{field}.sizing", self.sizing[app.sizing][workload], cpu_groups, "cpu")  # type: ignore[index]
        if self.fraud_on_gpu:
            fraud = apps.fraud_pipeline
            gpu_groups = list(self.gpu_node_groups.values())
            _require_fit("apps.fraud_pipeline.sizing", self.sizing[fraud.sizing]["worker"], gpu_groups, "gpu")
            stages = fraud.replicas.preprocessing + fraud.inference_peak + fraud.replicas.model_build
            demand = stages * fraud.gpus_per_pod
            if self.storage.shared_volume.read_write_many:
                pool, where = sum(g.max_size * g.shape.gpus for g in gpu_groups), "the gpu node groups at max_size"
            else:
                pool = max(g.shape.gpus for g in gpu_groups)
                where = "one gpu node (the ReadWriteOnce shared volume keeps every stage on one node)"
            if demand > pool:
                raise ValueError(
                    f"apps.fraud_pipeline: its GPU stages (preprocessing + inference at its peak + model_build "
                    f"replicas) need "
                    f"{demand} GPUs but {where} offer {pool}: add GPU capacity, lower the replicas or set use_gpu: false"
                )
        return self

    def _model_users(self) -> list[tuple[str, ModelFamily]]:
        """(app field, family) of every enabled app that serves a model family."""
        apps = self.apps
        users: list[tuple[str, bool, ModelFamily]] = [
            ("apps.inference_api", apps.inference_api.enabled, apps.inference_api.model_family),
            ("apps.fraud_pipeline", apps.fraud_pipeline.enabled, "fraud"),
            ("apps.batch_pipeline", apps.batch_pipeline.enabled, "pcc"),
        ]
        return [(field, family) for field, enabled, family in users if enabled]

    @property
    def families_in_use(self) -> list[ModelFamily]:
        """The model families some enabled app serves: each gets a bootstrap Job and a registry."""
        return sorted({family for _, family in self._model_users()})

    def _models_declared(self) -> None:
        for field, family in self._model_users():
            if family not in self.models:
                raise ValueError(f"{field} uses model family {family!r}, which models declares not "
                                 f"(declared: {sorted(self.models)})")
        api = self.apps.inference_api
        if api.enabled:
            contract, sent = self.models[api.model_family], feature_names(api.features)
            if contract.feature_names != sent:
                raise ValueError(
                    f"apps.inference_api.model_family: family {api.model_family!r} takes "
                    f"{_schema(contract.feature_names, contract.classes)}, but the API's clients send "
                    f"{_features(sent)} (apps.inference_api.features): point the API at a family of its schema")

    # Derived views, so no room recomputes them differently.

    @property
    def gpu_node_groups(self) -> dict[str, NodeGroup]:
        return {n: g for n, g in self.node_groups.items() if g.kind == "gpu"}

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpu_node_groups)

    @property
    def fraud_on_gpu(self) -> bool:
        """The fraud pipeline runs its GPU variants (else its CPU variants, GPU ones at zero)."""
        return self.has_gpu and self.apps.fraud_pipeline.use_gpu

    def resources(self, strategy: SizingStrategy, workload: WorkloadClass) -> Resources:
        return self.sizing[strategy][workload]

    @property
    def api_model(self) -> ModelContract:
        """The contract of the family the inference API serves."""
        return self.models[self.apps.inference_api.model_family]

    def model_registry_uri(self, family: ModelFamily) -> str:
        return f"{self.storage.models_uri.rstrip('/')}/{family}"

    def image(self, name: str) -> str:
        """The pinned reference of one of the project's images."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise ValueError(f"bad image name {name!r}")
        prefix = f"{self.images.registry}/" if self.images.registry else ""
        if digest := self.images.digests.get(name):
            return f"{prefix}{name}@{digest}"
        return f"{prefix}{name}:{self.images.tag}"


def _require_fit(field: str, resources: Resources, groups: list[NodeGroup], kind: str) -> None:
    requests = resources.requests
    for group in groups:
        shape = group.shape
        if requests.cpu_millis <= shape.allocatable_cpu_millis and requests.memory_mib <= shape.allocatable_memory_mib:
            return
    largest = max((g.shape for g in groups), key=lambda s: (s.allocatable_cpu_millis, s.allocatable_memory_mib))
    raise ValueError(
        f"{field}: requests of {requests.cpu} CPU / {requests.memory} fit no {kind} node: the largest offers "
        f"{largest.allocatable_cpu_millis}m / {largest.allocatable_memory_mib}Mi after the kubelet reservation"
    )
