"""Guards: one rule per catalogue id, registered on the App in one place by ``register_guards``."""

from __future__ import annotations

from collections.abc import Iterable

import cdk_nag
from aws_cdk import App, Validations

from config.schema import AppConfig
from constructs.guards import (
    alarm_5xx_misconfigured,
    asyncpg_ssl_param,
    cors_wildcard,
    database_url_format,
    plaintext_secrets,
    private_egress_for_pulls,
    rds_public_access,
    rds_storage_backup,
    redis_auth_tls,
    region_mismatch,
    secret_key_weak,
    slow_query_logging,
    ssh_bastion,
    ssm_securestring_missing,
)
from constructs.guards.framework import Finding, GuardValidation, Rule, Tree

__all__ = ["RULES", "Finding", "Rule", "Tree", "register_guards"]

RULES: tuple[Rule, ...] = tuple(
    module.RULE
    for module in (
        alarm_5xx_misconfigured,
        asyncpg_ssl_param,
        cors_wildcard,
        database_url_format,
        plaintext_secrets,
        private_egress_for_pulls,
        rds_public_access,
        rds_storage_backup,
        redis_auth_tls,
        region_mismatch,
        secret_key_weak,
        slow_query_logging,
        ssh_bastion,
        ssm_securestring_missing,
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
