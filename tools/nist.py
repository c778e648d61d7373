"""cdk-nag's NIST 800-53 R5 pack as a report, not a gate (``make scan``): ``<assembly>/nist-800-53-r5.json``.

Each stage is built once more with only that pack; its findings are grouped by rule with the resources and, where
this project accepts the finding, the reason (the same text as the matching cdk-nag / checkov decision, see
``constructs/nag.py``). A rule without a reason is an open finding; REVIEW.md's inventory lists both.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from constructs.nag import DEPLOY_HELPER, LOGS_AWS_KEY, NO_DOMAIN, SECRETS_AWS_KEY

REPORT = "nist-800-53-r5.json"
PREFIX = "NIST.800.53.R5-"
ACCESS_LOGS = (
    "the ALB access-log bucket: ELB log delivery supports only SSE-S3; logging or replicating it would recurse"
)
TOKEN = (
    "the rule cannot read a CloudFormation token here (a port from the database endpoint, the VPC's CIDR); "
    "REVIEW.md's reachability lists the real rules, and ssh-bastion refuses port 22"
)
ACCEPTED = {
    "CloudWatchLogGroupEncrypted": LOGS_AWS_KEY,
    "SecretsManagerUsingKMSKey": SECRETS_AWS_KEY,
    "SecretsManagerRotationEnabled": "rotation would stale the composed DATABASE_URL / REDIS_URL; rotate by redeploy",
    "LambdaConcurrency": DEPLOY_HELPER,
    "LambdaDLQ": DEPLOY_HELPER,
    "LambdaInsideVPC": DEPLOY_HELPER,
    "RDSMultiAZSupport": "single-AZ is this stage's choice; prod is refused without multi-AZ",
    "RDSInstanceDeletionProtectionEnabled": "this stage's data is disposable; prod is refused without protection",
    "RDSInBackupPlan": "RDS automated backups (database.backup_retention_days, at least 7) instead of AWS Backup",
    "ElastiCacheRedisClusterAutomaticBackup": "the cache holds rebuildable data; prod keeps 7 days of snapshots",
    "ELBDeletionProtectionEnabled": "only prod's load balancer is protected from deletion",
    "ALBHttpToHttpsRedirection": NO_DOMAIN,
    "ELBv2ACMCertificateRequired": NO_DOMAIN,
    "S3BucketLoggingEnabled": ACCESS_LOGS,
    "S3BucketReplicationEnabled": ACCESS_LOGS,
    "S3DefaultEncryptionKMS": ACCESS_LOGS,
    "VPCSubnetAutoAssignPublicIpDisabled": "public subnets hold only the ALB and NAT gateway; tasks get no public IP",
    "VPCNoUnrestrictedRouteToIGW": "public subnets route to the internet gateway by design (ALB, NAT gateway)",
    "IAMNoInlinePolicy": "CDK attaches each grant as an inline policy of its role; REVIEW.md lists every action",
    "ALBWAFEnabled": "AWS WAF is a per-stage choice (load_balancer.waf, on in prod); this stage runs without it",
    "WAFv2LoggingEnabled": "the web ACL keeps sampled requests and per-rule CloudWatch metrics; full request logs "
    "(aws-waf-logs-* delivery) are left out for now",
    "EC2RestrictedCommonPorts": "a public web service: clients come from the internet on 80/443 (the ALB only)",
}


def nist_report(name: str, out: Path) -> list[dict[str, Any]]:
    """Build ``name`` (a stage or a stage file) with only the NIST pack; write and return its findings."""
    import aws_cdk as cdk
    import cdk_nag

    from config import load_config, resolve_account
    from stacks import build_stacks
    from tools.synth_stages import CLI_CONTEXT

    root = Path(__file__).resolve().parents[1]
    context = json.loads((root / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    is_file = name.endswith(".yaml")
    config, _ = resolve_account(load_config(None if is_file else name, path=name if is_file else None), environ={})
    with tempfile.TemporaryDirectory(prefix="nist-") as temporary:
        app = cdk.App(outdir=temporary, context={**context, **CLI_CONTEXT})
        build_stacks(app, config)
        cdk.Validations.of(app).add_plugins(cdk_nag.NIST80053R5Checks(app))
        with contextlib.suppress(RuntimeError):  # a report, not a gate: the findings are in the validation report
            app.synth()
        path = Path(temporary) / "validation-report.json"
        payload = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"pluginReports": []}
    findings = []
    for plugin in payload.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            rule = str(violation.get("ruleName", "")).removeprefix(PREFIX)
            description = str(violation.get("description", "")).split(" - (Control ID", 1)[0]
            resources = sorted({str(c.get("constructPath", "")) for c in violation.get("violatingConstructs", [])})
            findings.append(
                {
                    "rule": rule,
                    "description": description,
                    "resources": resources,
                    "reason": TOKEN if description.startswith("Rule threw an error") else ACCEPTED.get(rule, ""),
                }
            )
    findings.sort(key=lambda item: (bool(item["reason"]), item["rule"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(json.dumps(findings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return findings
