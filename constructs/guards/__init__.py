"""Guards: one rule per catalogue id, registered on the App in one place by ``register_guards``."""

from __future__ import annotations

from collections.abc import Iterable

import cdk_nag
from aws_cdk import App, Validations

from config.schema import AppConfig
from constructs.guards import (
    alarm_5xx_misconfigured,
    alb_access_logs,
    alb_health_check_path,
    alb_keepalive_502,
    alb_to_target_sg,
    asyncpg_ssl_param,
    cors_wildcard,
    database_url_format,
    db_connection_exhaustion,
    deep_health_check,
    ecr_pull_permission,
    fargate_memory_oom,
    jwt_secret_inconsistent,
    logs_missing,
    manual_rollback,
    missing_env_vars,
    no_exec_on_fargate,
    plaintext_secrets,
    private_egress_for_pulls,
    rds_public_access,
    rds_storage_backup,
    redis_auth_tls,
    redis_sg,
    region_mismatch,
    secret_key_weak,
    secret_read_permission,
    sg_compute_to_rds,
    slow_query_logging,
    ssh_bastion,
    ssm_securestring_missing,
    tls_certificate,
)
from constructs.guards.framework import Finding, GuardValidation, Rule, Tree

__all__ = ["RULES", "Finding", "Rule", "Tree", "register_guards"]

RULES: tuple[Rule, ...] = tuple(
    module.RULE
    for module in (
        alarm_5xx_misconfigured,
        alb_access_logs,
        alb_health_check_path,
        alb_keepalive_502,
        alb_to_target_sg,
        asyncpg_ssl_param,
        cors_wildcard,
        database_url_format,
        db_connection_exhaustion,
        deep_health_check,
        ecr_pull_permission,
        fargate_memory_oom,
        jwt_secret_inconsistent,
        logs_missing,
        manual_rollback,
        missing_env_vars,
        no_exec_on_fargate,
        plaintext_secrets,
        private_egress_for_pulls,
        rds_public_access,
        rds_storage_backup,
        redis_auth_tls,
        redis_sg,
        region_mismatch,
        secret_key_weak,
        secret_read_permission,
        sg_compute_to_rds,
        slow_query_logging,
        ssh_bastion,
        ssm_securestring_missing,
        tls_certificate,
    )
)


def register_guards(app: App, config: AppConfig, *, extra_rules: Iterable[Rule] = (), nag: bool = True) -> None:
    """Attach every rule (plus a target's ``extra_rules``) and cdk-nag's AwsSolutions pack to ``app``.

    Called by ``app.py`` and by the tests, so both enforce the same policy. ``nag=False`` is for focused
    rule tests that build deliberately incomplete stacks.
    """
    app.node.add_validation(GuardValidation(app, config, (*RULES, *extra_rules)))
    if nag:
        Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
