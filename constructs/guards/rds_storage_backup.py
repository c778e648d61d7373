"""rds-storage-backup: storage autoscaling, backups >= 7 days, encryption; prod keeps data."""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import CfnDeletionPolicy

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree

MIN_BACKUP_DAYS = 7


class RdsStorageBackup:
    """Compliant: encrypted storage that can autoscale, >= 7 days of backups; in prod deletion protection and
    a Snapshot/Retain deletion policy."""

    id = "rds-storage-backup"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource in tree.of_type("AWS::RDS::DBInstance"):
            props = resource.props
            if props.get("storageEncrypted") is not True:
                yield Finding(
                    self.id,
                    resource.path,
                    f"StorageEncrypted={props.get('storageEncrypted')}",
                    "set storage_encrypted=True",
                )
            allocated, maximum = int(props.get("allocatedStorage", 0) or 0), props.get("maxAllocatedStorage")
            if not isinstance(maximum, int) or maximum <= allocated:
                yield Finding(
                    self.id,
                    resource.path,
                    f"MaxAllocatedStorage={maximum}",
                    f"set max_allocated_storage above allocated storage ({allocated}) to autoscale",
                )
            backups = props.get("backupRetentionPeriod")
            if not isinstance(backups, int) or backups < MIN_BACKUP_DAYS:
                yield Finding(
                    self.id,
                    resource.path,
                    f"BackupRetentionPeriod={backups}",
                    f"keep backups at least {MIN_BACKUP_DAYS} days",
                )
            if config.stage != "prod":
                continue
            if props.get("deletionProtection") is not True:
                yield Finding(
                    self.id,
                    resource.path,
                    f"DeletionProtection={props.get('deletionProtection')}",
                    "prod requires deletion_protection=True",
                )
            policy = resource.node.cfn_options.deletion_policy
            if policy not in (CfnDeletionPolicy.SNAPSHOT, CfnDeletionPolicy.RETAIN):
                yield Finding(
                    self.id,
                    resource.path,
                    f"DeletionPolicy={policy.name if policy else 'Delete'}",
                    "prod requires removal_policy=SNAPSHOT or RETAIN",
                )


RULE = RdsStorageBackup()
