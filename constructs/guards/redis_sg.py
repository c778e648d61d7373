"""redis-sg: the cache security group admits exactly the enabled targets' compute groups on the Redis port, and each
of those groups may send to it."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.cache import REDIS_PORT
from constructs.guards.framework import Finding, Tree
from constructs.guards.sg_compute_to_rds import check_admission


class RedisSg:
    """Compliant: like sg-compute-to-rds (ingress from exactly the compute groups, egress from each of them), for
    ElastiCache replication groups."""

    id = "redis-sg"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        protected = {
            g: r
            for r in tree.of_type("AWS::ElastiCache::ReplicationGroup")
            for g in r.raw.get("securityGroupIds") or []
        }
        yield from check_admission(self.id, "the cache", REDIS_PORT, tree, protected, lambda s: s.uses_cache)


RULE = RedisSg()
