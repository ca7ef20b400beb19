"""The shared file system: the EFS file system behind the `efs-sc` StorageClass (the fraud
pipeline's ReadWriteMany queue volume, seed 002), one mount target per private subnet, and a
security group that admits NFS only from the cluster's nodes.

Encrypted with a rotating key of its own, moved to Infrequent Access after 30 days unread,
backed up by AWS Backup in production. In production the file system, its key and its backup
policy are retained on delete, like the buckets: a `pulumi destroy` leaves the data in the account.

    >>> from environments import load_environment
    >>> SharedFileSystemArgs.from_env(load_environment("prod"), vpc_id="vpc-1", subnet_ids=["a", "b", "c"],
    ...                               subnet_count=3, node_security_group_id="sg-1").backups
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from environments import Environment

TOKEN = "mlops:infra:SharedFileSystem"
NFS_PORT = 2049


@dataclass(frozen=True)
class SharedFileSystemArgs:
    cluster_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    # Known before the subnets exist: one mount target each.
    subnet_count: int
    # The group the nodes run in: the only source NFS is admitted from.
    node_security_group_id: pulumi.Input[str]
    performance_mode: str
    throughput_mode: str
    backups: bool
    # Non-production stacks may be torn down with their contents; production may not.
    disposable: bool

    @classmethod
    def from_env(cls, env: Environment, *, vpc_id: pulumi.Input[str], subnet_ids: pulumi.Input[list[str]],
                 subnet_count: int, node_security_group_id: pulumi.Input[str]) -> SharedFileSystemArgs:
        assert env.aws is not None  # guardrails refuse an environment without an aws block
        efs = env.addons.efs_csi_driver
        return cls(cluster_name=env.aws.cluster.name, vpc_id=vpc_id, subnet_ids=subnet_ids, subnet_count=subnet_count,
                   node_security_group_id=node_security_group_id, performance_mode=efs.performance_mode,
                   throughput_mode=efs.throughput_mode, backups=env.production, disposable=not env.production)


class SharedFileSystem(pulumi.ComponentResource):
    file_system_id: pulumi.Output[str]
    file_system_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: SharedFileSystemArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=not args.disposable)

        key = aws.kms.Key(f"{name}-key", description=f"EFS encryption for {args.cluster_name}",
                          enable_key_rotation=True, deletion_window_in_days=30, opts=kept)
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.cluster_name}-efs", target_key_id=key.key_id, opts=kept)
        fs = aws.efs.FileSystem(
            f"{name}-fs",
            creation_token=f"{args.cluster_name}-shared",
            encrypted=True,
            kms_key_id=key.arn,
            performance_mode=args.performance_mode,
            throughput_mode=args.throughput_mode,
            # Queue files go cold once processed; one read brings a file back to the fast class.
            lifecycle_policies=[{"transition_to_ia": "AFTER_30_DAYS"},
                                {"transition_to_primary_storage_class": "AFTER_1_ACCESS"}],
            tags={"Name": f"{args.cluster_name}-shared"},
            opts=kept,
        )
        aws.efs.BackupPolicy(f"{name}-backup", file_system_id=fs.id,
                             backup_policy={"status": "ENABLED" if args.backups else "DISABLED"}, opts=kept)

        # No egress rule: mount targets only answer, and the group is stateful.
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{args.cluster_name}-efs",
            description=f"NFS to the {args.cluster_name} shared file system, from the cluster's nodes only",
            vpc_id=args.vpc_id,
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                description="NFS from the cluster's nodes", protocol="tcp", from_port=NFS_PORT, to_port=NFS_PORT,
                security_groups=[args.node_security_group_id])],
            tags={"Name": f"{args.cluster_name}-efs"},
            opts=child,
        )
        subnets = pulumi.Output.from_input(args.subnet_ids)
        for i in range(args.subnet_count):
            aws.efs.MountTarget(f"{name}-mount-{i}", file_system_id=fs.id,
                                subnet_id=subnets[i], security_groups=[sg.id], opts=child)

        self.file_system_id = fs.id
        self.file_system_arn = fs.arn
        self.security_group_id = sg.id
        self.register_outputs({"file_system_id": self.file_system_id, "security_group_id": self.security_group_id})
