"""The <app>-ci stack (make ci-bootstrap): exact GitHub trust, bootstrap-role-only deploy roles, and its guards."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from config import AppConfig, ConfigError, load_config
from constructs.guards import register_guards
from stacks.ci import CiStack
from tests.conftest import EXAMPLES, new_app, stage_config
from tests.test_guards import assert_refused
from tools import ci_bootstrap

ACCOUNT = "123456789012"
SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"
BOOTSTRAP = f"{ACCOUNT}-eu-west-1"


def ci_stage(name: str = "staging", **ci: Any) -> AppConfig:
    """Stage ``name`` (staging: the services example) with ``ci`` (repository example-org/shop plus ``ci``)."""
    raw = stage_config("services" if name == "staging" else name).model_dump()
    return AppConfig.model_validate({**raw, "ci": {"repository": "example-org/shop", **ci}})


def ci_app(*configs: Any) -> tuple[cdk.App, CiStack]:
    app = new_app()
    stack = CiStack(app, "shop-ci", configs=list(configs))
    register_guards(app, configs[0])
    return app, stack


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    app, stack = ci_app(ci_stage("staging"), ci_stage("prod", environment="production"))
    app.synth()  # guards + cdk-nag: no refusal
    return dict(Template.from_stack(stack).to_json())


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == kind}


def role(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    return next((k, p) for k, p in resources(template, "AWS::IAM::Role").items() if p["RoleName"] == name)


def allowed(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": logical_id} in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def flat(value: Any) -> str:
    """An ARN built with the partition token, as one string ("arn:aws:...")."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join("aws" if part == {"Ref": "AWS::Partition"} else part for part in value["Fn::Join"][1])
    return str(value)


def test_one_provider_and_a_deploy_role_per_stage_trusted_by_exactly_one_repository_and_environment(
    template: dict[str, Any],
) -> None:
    (provider,) = resources(template, "AWS::IAM::OIDCProvider").values()
    assert provider["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]
    for name, subject in (
        ("shop-staging-ci-deploy", "repo:example-org/shop:environment:staging"),
        ("shop-prod-ci-deploy", "repo:example-org/shop:environment:production"),
    ):
        _, props = role(template, name)
        (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Condition"] == {"StringEquals": {AUD: "sts.amazonaws.com", SUB: subject}}
        assert props["MaxSessionDuration"] == 7200  # a deploy job may take two hours
        assert "ManagedPolicyArns" not in props


def test_a_deploy_role_may_only_assume_its_stage_bootstrap_roles(template: dict[str, Any]) -> None:
    logical_id, _ = role(template, "shop-prod-ci-deploy")
    (statement,) = allowed(template, logical_id)
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert sorted(flat(r) for r in statement["Resource"]) == [
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-{kind}-role-{BOOTSTRAP}"
        for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
    ]


def test_the_diff_role_is_for_pull_requests_and_only_assumes_lookup_roles(template: dict[str, Any]) -> None:
    logical_id, props = role(template, "shop-ci-diff")
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["StringEquals"][SUB] == "repo:example-org/shop:pull_request"
    (statement,) = allowed(template, logical_id)
    assert flat(statement["Resource"]) == f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-lookup-role-{BOOTSTRAP}"


def test_an_existing_provider_is_used_by_arn_and_none_is_created() -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    app, stack = ci_app(ci_stage(oidc_provider_arn=arn))
    app.synth()
    template = dict(Template.from_stack(stack).to_json())
    assert not resources(template, "AWS::IAM::OIDCProvider")
    _, props = role(template, "shop-staging-ci-deploy")
    assert props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Federated": arn}


@pytest.mark.parametrize(
    ("ci", "rule", "where"),
    [
        ({"repository": "example-org/*"}, "ci-trust-too-broad", "ci.repository"),
        ({"repository": "example-org/shop", "environment": "prod*"}, "ci-trust-too-broad", "ci.environment"),
        ({"repository": "https://github.com/example-org/shop"}, "config", "ci.repository"),
        (
            {"repository": "example-org/shop", "oidc_provider_arn": "arn:aws:iam::111111111111:oidc-provider/x"},
            "config",
            "ci.oidc_provider_arn",
        ),
        (
            {
                "repository": "example-org/shop",
                "oidc_provider_arn": "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com",
            },
            "config",
            "ci.oidc_provider_arn",
        ),
    ],
)
def test_the_stage_file_refuses_a_wildcard_or_foreign_ci_value(
    tmp_path: Path, ci: dict[str, str], rule: str, where: str
) -> None:
    raw = yaml.safe_load(EXAMPLES["services"].read_text())
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump({**raw, "ci": ci}))
    with pytest.raises(ConfigError) as refused:
        load_config(path=path)
    assert any(line.startswith(f"[{rule}] {where}") for line in refused.value.problems), refused.value.problems


def test_ci_needs_the_stage_account(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLES["services"].read_text())
    raw.update(stage="dev", ci={"repository": "example-org/shop"})
    raw.pop("account")
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as refused:
        load_config(path=path)
    assert any(line.startswith("[config] ci:") and "account" in line for line in refused.value.problems)


# -- guards over any GitHub-trusted role (a hand-written one too) ------------------------------------------------


def github_role(stack: cdk.Stack, name: str, conditions: dict[str, Any]) -> iam.Role:
    provider = stack.node.find_child("Github").node.find_child("Provider")
    return iam.Role(
        stack,
        name,
        assumed_by=iam.WebIdentityPrincipal(provider.oidc_provider_arn, conditions=conditions),  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize(
    ("conditions", "value"),
    [
        ({"StringLike": {SUB: "repo:example-org/*", AUD: "sts.amazonaws.com"}}, "under StringLike"),
        ({"StringEquals": {AUD: "sts.amazonaws.com"}}, "any repository may assume it"),
        ({"StringEquals": {SUB: "repo:example-org/shop:*", AUD: "sts.amazonaws.com"}}, "repo:example-org/shop:*"),
        ({"StringEquals": {SUB: "repo:example-org/shop:pull_request"}}, f"{AUD} = null"),
    ],
)
def test_a_github_trusted_role_without_one_exact_subject_is_refused(conditions: dict[str, Any], value: str) -> None:
    app, stack = ci_app(ci_stage())
    github_role(stack, "HandWritten", conditions)
    assert_refused(app, "ci-trust-too-broad", "shop-ci/HandWritten", value)


def test_a_full_access_policy_is_refused_on_any_role() -> None:
    app, stack = ci_app(ci_stage())
    stack.roles.deploy_roles["staging"].add_managed_policy(
        iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEC2FullAccess")
    )
    assert_refused(app, "iam-deployer-overprivileged", "managed policy AmazonEC2FullAccess")


def test_a_ci_role_that_does_more_than_assume_bootstrap_roles_is_refused() -> None:
    app, stack = ci_app(ci_stage())
    stack.roles.deploy_roles["staging"].add_to_policy(
        iam.PolicyStatement(actions=["cloudformation:CreateStack"], resources=["*"])
    )
    assert_refused(app, "iam-deployer-overprivileged", "cloudformation:CreateStack")


def test_a_ci_role_that_may_assume_any_role_is_refused() -> None:
    app, stack = ci_app(ci_stage())
    stack.roles.deploy_roles["staging"].add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=["*"]))
    assert_refused(app, "iam-deployer-overprivileged", "may assume", "*")


def test_a_ci_role_with_any_managed_policy_is_refused() -> None:
    app, stack = ci_app(ci_stage())
    stack.roles.deploy_roles["staging"].add_managed_policy(
        iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")
    )
    assert_refused(app, "iam-deployer-overprivileged", "a GitHub-trusted role has", "ReadOnlyAccess")


def test_action_star_is_refused_in_any_stack() -> None:
    app, stack = ci_app(ci_stage())
    iam.Role(stack, "Admin", assumed_by=iam.AccountRootPrincipal()).add_to_policy(
        iam.PolicyStatement(actions=["*"], resources=["*"])
    )
    assert_refused(app, "iam-deployer-overprivileged", "Action: *")


# -- make ci-bootstrap -------------------------------------------------------------------------------------------


def write_stage(directory: Path, stage: str, **updates: Any) -> Path:
    """Stage ``stage`` of account 123456789012 (staging: the services example, with its ci:) into ``directory``."""
    source = EXAMPLES["services"] if stage == "staging" else Path(f"config/stages/{stage}.yaml")
    raw = {**yaml.safe_load(source.read_text()), "account": ACCOUNT, **updates}
    path = directory / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_every_ci_stage_of_the_account_gets_its_role_and_one_provider_arn_is_required(tmp_path: Path) -> None:
    write_stage(tmp_path, "staging")
    write_stage(tmp_path, "prod", ci={"repository": "example-org/shop", "oidc_provider_arn": None})
    write_stage(tmp_path, "dev", ci=None)  # no ci: no role
    (tmp_path / "broken.yaml").write_text("app: [")
    config = load_config(path=tmp_path / "staging.yaml")
    stages, notices = ci_bootstrap.account_stages(config, tmp_path)
    assert [c.stage for c in stages] == ["prod", "staging"]  # by name, whichever stage bootstraps
    assert len(notices) == 1 and "broken.yaml: skipped" in notices[0]
    assert ci_bootstrap.conflicts(stages) == []
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    one, two = (ci_stage("staging", oidc_provider_arn=arn), ci_stage("prod", oidc_provider_arn=arn))
    assert ci_bootstrap.conflicts([one, two]) == []  # the same provider named twice is fine
    imported = arn.replace("token.actions", "token2.actions")
    two = two.model_copy(update={"ci": two.ci.model_copy(update={"oidc_provider_arn": imported})})  # type: ignore[union-attr]
    (line,) = ci_bootstrap.conflicts([one, two])
    assert line.startswith(f"[config] ci.oidc_provider_arn: prod: {imported}, staging: {arn} — ")


def test_make_ci_bootstrap_without_ci_says_what_to_add(capsys: pytest.CaptureFixture[str]) -> None:
    assert ci_bootstrap.main(["--stage", "dev"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cannot bootstrap CI: [config] config/stages/dev.yaml: ci: not set")


def test_make_ci_bootstrap_synthesizes_offline_and_deploys_only_after_the_account_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    argv = ["--config", str(EXAMPLES["services"]), "--out", str(tmp_path)]
    assert ci_bootstrap.main(argv, run=run) == 0
    err = capsys.readouterr().err
    assert "shop-staging-ci-deploy: assumed only by repo:example-org/shop:environment:staging" in err
    assert (tmp_path / f"shop-ci-{ACCOUNT}" / "shop-ci.template.json").exists() and not calls
    assert ci_bootstrap.main([*argv, "--deploy"], run=run, gate=lambda _argv: 2) == 2 and not calls
    assert ci_bootstrap.main([*argv, "--deploy"], run=run, gate=lambda _argv: 0) == 0
    assert calls == [
        ["npx", "--no-install", "cdk", "deploy", "--app", str(tmp_path / f"shop-ci-{ACCOUNT}"), "--all", "--no-notices"]
    ]
