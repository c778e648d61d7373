"""load_balancer.waf: AWS WAF with AWS managed rule groups on the stage's ALB (prod uses it)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import stage_config, synthesized


def test_prod_alb_is_behind_a_web_acl_with_the_managed_rule_groups() -> None:
    s = synthesized("prod")
    assert s.stacks.ecs is not None
    template = s.template(s.stacks.ecs)
    resources = template["Resources"]
    (acl_id, acl) = next((k, r) for k, r in resources.items() if r["Type"] == "AWS::WAFv2::WebACL")
    groups = [rule["Statement"]["ManagedRuleGroupStatement"]["Name"] for rule in acl["Properties"]["Rules"]]
    assert groups == list(s.config.load_balancer.waf.managed_rules)  # type: ignore[union-attr]
    assert acl["Properties"]["Scope"] == "REGIONAL" and acl["Properties"]["DefaultAction"] == {"Allow": {}}
    (association,) = [r for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACLAssociation"]
    alb = next(k for k, r in resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert association["Properties"] == {"ResourceArn": {"Ref": alb}, "WebACLArn": {"Fn::GetAtt": [acl_id, "Arn"]}}


def test_waf_with_elastic_beanstalk_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"Elastic Beanstalk creates its own load balancer"):
        stage_config("staging", load_balancer={"waf": {}})


def test_an_unknown_rule_group_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"AWSManagedRulesCommonRuleSet"):
        stage_config("dev", load_balancer={"waf": {"managed_rules": ["AWSManagedRulesEverything"]}})
