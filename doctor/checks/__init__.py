"""The checks of each mode, in the order they run, and the runner that keeps one failure to one row."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from doctor.aws import explain
from doctor.checks import crash, domain, identity, network, observability, secrets, targets
from doctor.model import Check, Context, Finding, NotChecked, warn

# Before the first deploy: can this caller deploy this stage here, and will the deploy find what it needs?
PREFLIGHT: tuple[Check, ...] = (
    Check("local-credentials", "caller identity and region", identity.caller),
    Check("region-mismatch", "CDK bootstrap in the stage region", identity.cdk_bootstrap),
    Check("region-mismatch", "availability zones of the stage", identity.zones_offered),
    Check("ecr-pull-permission", "image in ECR", targets.image),
    Check("eb-solution-stack-retired", "EB solution stack offered", targets.solution_stack_offered),
    Check("eb-env-exists", "EB environment name free", targets.environment_clash),
    Check("provided-secret-missing", "provided secrets stored", secrets.provided_secrets),
)

# After a deploy: is what the stage file describes what runs, and is it healthy?
POST_DEPLOY: tuple[Check, ...] = (
    Check("local-credentials", "caller identity and region", identity.caller),
    Check("region-mismatch", "stacks of the stage", identity.stacks_deployed),
    Check("region-mismatch", "database and cache placement", identity.data_placement),
    Check("sg-compute-to-rds", "database security group", network.database_ingress),
    Check("redis-sg", "cache security group", network.cache_ingress),
    Check("rds-public-access", "database public access", network.database_public),
    Check("eks-fargate-pod-sg", "EKS cluster security group", network.eks_pod_security_group),
    Check("ssm-securestring-missing", "SecureString parameters", secrets.secure_strings),
    Check("provided-secret-missing", "provided secrets stored", secrets.provided_secrets),
    Check("secret-read-permission", "consumer read permissions", secrets.read_permission),
    Check("ecr-pull-permission", "image in ECR", targets.image),
    Check("eb-solution-stack-retired", "EB solution stack offered", targets.solution_stack_offered),
    Check("eb-env-exists", "EB environment health", targets.environment_health),
    Check("alb-health-check-path", "target health", targets.target_health),
    Check("domain-misrouted", "domain names and certificates", domain.misrouted),
    Check("fargate-profile-namespace", "EKS cluster and Fargate profiles", targets.eks_cluster),
    Check("secret-rollout-stale", "services run the current parameter versions", secrets.rollout_stale),
    Check("app-startup-crash", "services start without crashing", crash.crashes),
    Check("alarm-5xx-misconfigured", "alarms", observability.alarms),
    Check("logs-missing", "log groups", observability.log_groups),
)


def run_checks(ctx: Context, checks: Sequence[Check], on_start: Callable[[Check], None] | None = None) -> list[Finding]:
    """Run ``checks`` in order. A check that cannot run (missing stack, access denied, throttled after retries)
    becomes one ``warn`` row with the reason; nothing escapes as a traceback."""
    findings: list[Finding] = []
    for check in checks:
        if on_start is not None:
            on_start(check)
        try:
            findings.extend(check.run(ctx))
        except NotChecked as skipped:
            findings.append(warn(check.check_id, check.title, f"not checked: {skipped}"))
        except Exception as error:  # one line per check, whatever AWS or the SDK raised
            findings.append(warn(check.check_id, check.title, f"could not run: {explain(error)}"))
    return findings
