"""Guard framework: rules run over the whole construct tree at synth and refuse with ``[<id>] ...``.

A rule is a class with a catalogue ``id`` and ``check(tree, config)`` yielding ``Finding``s. ``GuardValidation``
is added to the App with ``node.add_validation``, so ``cdk synth`` and ``app.synth()`` in tests both fail.
Every CloudFormation resource is resolved once per synth into ``tree.resources`` (camelCase L1 properties,
tokens resolved to intrinsics), which is what rules look at: a raw ``Cfn*`` resource added by hand is seen too,
and so is a raw override (``add_property_override`` ...) made on any resource.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import jsii
from aws_cdk import App, CfnResource, Stack, aws_iam as iam
from constructs import IConstruct, IValidation

from config.schema import AppConfig
from config.services import Service
from constructs.beanstalk_environment import BeanstalkEnvironment
from constructs.compute_target import ComputeTarget
from constructs.database_tunnel import DatabaseTunnel
from constructs.database_users import DatabaseUsers
from constructs.load_balancer import ServiceTargets, WebLoadBalancer


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    value: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.path}: {self.value} — {self.fix}"


@dataclass(frozen=True)
class Resource:
    """One CloudFormation resource of the app, as it will be written to its template."""

    path: str
    type: str
    props: dict[str, Any]
    raw: Mapping[str, Any]
    node: CfnResource
    stack: Stack

    def get(self, *keys: str, default: Any = None) -> Any:
        value: Any = self.props
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return value


# -- raw overrides ----------------------------------------------------------------------------------------------
# CDK keeps the values of ``add_override`` / ``add_property_override`` where no public API reads them back, and
# merges them only while rendering templates, after validation. Every override made from Python is recorded here,
# by the jsii object it was made on (several Python proxies may stand for one resource), so that ``Tree`` sees each
# resource as it will be written: an escape hatch cannot switch on what a rule refuses.
_OVERRIDES: dict[str, list[tuple[list[str], Any]]] = {}
_DELETE = object()


def _jsii_ref(node: CfnResource) -> str:
    return str(node.__jsii_ref__.ref)  # type: ignore[attr-defined]


def _record_overrides(method_name: str, prefix: str) -> None:
    original = getattr(CfnResource, method_name)
    signature = inspect.signature(original)

    def recording(self: CfnResource, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        path, *value = list(signature.bind(self, *args, **kwargs).arguments.values())[1:]
        keys = [key.replace("\\.", ".") for key in re.split(r"(?<!\\)\.", prefix + path)]
        _OVERRIDES.setdefault(_jsii_ref(self), []).append((keys, value[0] if value else _DELETE))

    recording.__doc__ = original.__doc__
    setattr(CfnResource, method_name, recording)


for _method, _prefix in (
    ("add_override", ""),
    ("add_property_override", "Properties."),
    ("add_deletion_override", ""),
    ("add_property_deletion_override", "Properties."),
):
    _record_overrides(_method, _prefix)


def _with_overrides(node: CfnResource, props: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """``props`` with the recorded ``Properties.*`` overrides of ``node`` applied the way CDK renders them. A top-level
    CloudFormation name becomes the L1 property name; values keep CloudFormation's capitalization."""
    overrides = _OVERRIDES.get(_jsii_ref(node))
    if not overrides:
        return props
    names = {cfn: cdk for cdk, cfn in (node._cfn_property_names or {}).items()}
    for keys, value in overrides:
        if keys[0] != "Properties":
            continue
        if len(keys) > 1:
            _put(props, keys[1:], value if value is _DELETE else stack.resolve(value), names)
        elif isinstance(value, dict):
            for key, item in value.items():
                _put(props, [key], stack.resolve(item), names)
    return props


def _put(target: Any, keys: list[str], value: Any, names: Mapping[str, str] | None) -> None:
    """Set (or with ``_DELETE`` remove) ``keys`` in ``target``; dictionaries are merged like CDK's deep merge.
    ``names`` maps top-level CloudFormation names to L1 names; below it an existing key is matched as written or
    with a lower-case first letter (how L1 structs are resolved)."""
    key, rest = keys[0], keys[1:]
    if isinstance(target, list):
        if not key.isdigit() or int(key) >= len(target):
            return
        slot: Any = int(key)
    elif isinstance(target, dict):
        lower = key[:1].lower() + key[1:]
        slot = names.get(key, key) if names is not None else next((k for k in (key, lower) if k in target), key)
    else:
        return
    current = target[slot] if isinstance(target, list) or slot in target else None
    if rest:
        if not isinstance(current, dict | list):
            current = target[slot] = {}
        _put(current, rest, value, None)
    elif value is _DELETE:
        if isinstance(target, dict):
            target.pop(slot, None)
    elif isinstance(value, dict) and isinstance(current, dict):
        for child, item in value.items():
            _put(current, [child], item, None)
    else:
        target[slot] = value


class Tree:
    """The resolved resources and stacks of an app, built once per validation run."""

    def __init__(self, app: App) -> None:
        self.stacks: list[Stack] = [c for c in app.node.find_all() if isinstance(c, Stack)]
        self.resources: list[Resource] = []
        for construct in app.node.find_all():
            if isinstance(construct, CfnResource):
                stack = Stack.of(construct)
                raw = construct._cfn_properties or {}
                props = _with_overrides(construct, stack.resolve(raw) or {}, stack)
                self.resources.append(
                    Resource(construct.node.path, construct.cfn_resource_type, props, raw, construct, stack)
                )

        self.targets: list[ComputeTarget] = [c for c in app.node.find_all() if isinstance(c, ComputeTarget)]
        # The database's own maintenance path (user bootstrap, credential rotation): admitted next to the targets.
        self.database_users: list[DatabaseUsers] = [c for c in app.node.find_all() if isinstance(c, DatabaseUsers)]
        # make db's port-forwarding task (operators:): admitted to the database on its port like the maintenance path.
        self.database_tunnels: list[DatabaseTunnel] = [c for c in app.node.find_all() if isinstance(c, DatabaseTunnel)]
        # Each web service's target group on each stage load balancer: whose health contract a group must check.
        self.web_targets: list[ServiceTargets] = [
            t for c in app.node.find_all() if isinstance(c, WebLoadBalancer) for t in c.targets.values()
        ]
        # Each Elastic Beanstalk environment and the web service it runs (several on a multi-web stage).
        self.eb_environments: list[BeanstalkEnvironment] = [
            c for c in app.node.find_all() if isinstance(c, BeanstalkEnvironment)
        ]

    def web_service_of(self, group: Resource) -> Service | None:
        """The web service whose target group ``group`` (an AWS::ElasticLoadBalancingV2::TargetGroup) is."""
        return next((t.service for t in self.web_targets if t.target_group.node.path + "/Resource" == group.path), None)

    def eb_service_of(self, env: Resource) -> Service | None:
        """The web service an AWS::ElasticBeanstalk::Environment runs (None: not built by BeanstalkEnvironment)."""
        return next((b.service for b in self.eb_environments if b.environment.node.path == env.path), None)

    def web_service_behind(self, ecs_service: Resource) -> Service | None:
        """The web service whose target group an AWS::ECS::Service registers its tasks in (None: not behind one)."""
        refs = json.dumps(ecs_service.props.get("loadBalancers") or [])
        for target in self.web_targets:
            group = target.target_group.node.default_child
            if isinstance(group, CfnResource) and f'"{Stack.of(group).get_logical_id(group)}"' in refs:
                return target.service
        return None

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    def resource_for(self, construct: IConstruct | None) -> Resource | None:
        path = construct.node.path if construct is not None else None
        return next((r for r in self.resources if r.path == path), None)

    def computes_of(self, target: ComputeTarget, *types: str) -> list[Resource]:
        """The resources (of ``types``, or all) inside the constructs ``target`` declares as its compute."""
        prefixes = tuple(c.node.path + "/" for c in target.compute)
        return [
            r
            for r in self.resources
            if prefixes and (r.path + "/").startswith(prefixes) and (not types or r.type in types)
        ]

    def in_stack_of(self, construct: IConstruct, *types: str) -> list[Resource]:
        stack = Stack.of(construct)
        return [r for r in self.resources if r.stack is stack and (not types or r.type in types)]

    def statements_of(self, role: Any) -> list[dict[str, Any]]:
        """Allow statements of every policy attached to ``role`` (inline on the role or AWS::IAM::Policy)."""
        statements: list[dict[str, Any]] = []
        for resource in self.of_type("AWS::IAM::Policy"):
            if resource.stack.resolve(role.role_name) in (resource.props.get("roles") or []):
                statements.extend(resource.get("policyDocument", "Statement", default=[]))
        for resource in self.of_type("AWS::IAM::Role"):
            if isinstance(resource.node, iam.CfnRole) and resource.node.attr_arn == role.role_arn:
                for policy in resource.props.get("policies") or []:
                    statements.extend(policy.get("policyDocument", {}).get("Statement", []))
        return [s for s in statements if s.get("Effect") == "Allow"]


class Rule(Protocol):
    id: ClassVar[str]

    def check(self, tree: Tree, config: AppConfig) -> Iterable[Finding]: ...


@jsii.implements(IValidation)
class GuardValidation:
    """Runs every rule once over the tree; each finding becomes one validation error line."""

    def __init__(self, app: App, config: AppConfig, rules: Iterable[Rule]) -> None:
        self._app, self._config, self._rules = app, config, list(rules)

    def validate(self) -> list[str]:
        tree = Tree(self._app)
        return [str(finding) for rule in self._rules for finding in rule.check(tree, self._config)]


# -- helpers shared by rules ----------------------------------------------------------------------------------


def is_literal(value: Any) -> bool:
    """True for a plain string/number, false for an intrinsic (Ref, GetAtt, Join ...)."""
    return isinstance(value, str | int | float | bool)


def strings(value: Any) -> Iterator[str]:
    """Every literal string inside a resolved property tree (intrinsic functions included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def prop(value: dict[str, Any], name: str) -> Any:
    """``value[name]`` of a resolved struct, also when a raw override wrote it capitalized as CloudFormation does."""
    return value.get(name, value.get(name[:1].upper() + name[1:]))


def compact(value: Any) -> str:
    """A short readable rendering of a value for messages."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class EnvVar:
    """A plain environment variable some compute resource will receive."""

    resource: Resource
    where: str
    name: str
    value: Any


def _ecs_env(resource: Resource) -> Iterator[EnvVar]:
    for index, container in enumerate(resource.get("containerDefinitions", default=[]) or []):
        for item in container.get("environment", []) or []:
            yield EnvVar(resource, f"containerDefinitions[{index}].environment", item.get("name"), item.get("value"))


def _lambda_env(resource: Resource) -> Iterator[EnvVar]:
    for name, value in (resource.get("environment", "variables", default={}) or {}).items():
        yield EnvVar(resource, "environment.variables", name, value)


EB_PLAIN_NAMESPACE = "aws:elasticbeanstalk:application:environment"


def _eb_env(resource: Resource) -> Iterator[EnvVar]:
    for option in resource.get("optionSettings", default=[]) or []:
        if option.get("namespace") == EB_PLAIN_NAMESPACE:
            yield EnvVar(resource, EB_PLAIN_NAMESPACE, option.get("optionName"), option.get("value"))


ENV_READERS: dict[str, Callable[[Resource], Iterator[EnvVar]]] = {
    "AWS::ECS::TaskDefinition": _ecs_env,
    "AWS::Lambda::Function": _lambda_env,
    "AWS::ElasticBeanstalk::Environment": _eb_env,
    "AWS::ElasticBeanstalk::ConfigurationTemplate": _eb_env,
}


def plain_env(tree: Tree) -> Iterator[EnvVar]:
    """Plain (non-secret) environment of every compute resource the app defines. Targets that deliver
    settings another way (k8s ConfigMaps) extend ``ENV_READERS``."""
    for resource in tree.resources:
        reader = ENV_READERS.get(resource.type)
        if reader:
            yield from reader(resource)


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def resources_of(statement: dict[str, Any]) -> list[str]:
    """The statement's resources, each flattened to one string (tokens of a Join become their parts)."""
    resources = statement.get("Resource", [])
    items = resources if isinstance(resources, list) else [resources]
    return ["".join(strings(item)) for item in items]


def allows(statements: list[dict[str, Any]], action: str, resource_fragment: str = "") -> bool:
    """True when some statement allows ``action`` (exact or service wildcard) on a resource containing the fragment."""
    service = action.split(":")[0]
    for statement in statements:
        if any(a in (action, f"{service}:*", "*") for a in actions_of(statement)) and any(
            resource_fragment in r or r == "*" for r in resources_of(statement)
        ):
            return True
    return False


# Settings delivered as secrets: name -> reference (parameter ARN / secret ARN / remote key) per resource type.
SecretRef = tuple[Resource, str, str, str]  # resource, where, setting name, reference as one string


def _ecs_secrets(resource: Resource) -> Iterator[SecretRef]:
    for index, container in enumerate(resource.get("containerDefinitions", default=[]) or []):
        for item in container.get("secrets", []) or []:
            yield (
                resource,
                f"containerDefinitions[{index}].secrets",
                item.get("name"),
                "".join(strings(item.get("valueFrom"))),
            )


EB_SECRETS_NAMESPACE = "aws:elasticbeanstalk:application:environmentsecrets"


def _eb_secrets(resource: Resource) -> Iterator[SecretRef]:
    for option in resource.get("optionSettings", default=[]) or []:
        if option.get("namespace") == EB_SECRETS_NAMESPACE:
            yield resource, EB_SECRETS_NAMESPACE, option.get("optionName"), "".join(strings(option.get("value")))


SECRET_READERS: dict[str, Callable[[Resource], Iterator[SecretRef]]] = {
    "AWS::ECS::TaskDefinition": _ecs_secrets,
    "AWS::ElasticBeanstalk::Environment": _eb_secrets,
    "AWS::ElasticBeanstalk::ConfigurationTemplate": _eb_secrets,
}


def eb_options(resource: Resource) -> dict[tuple[str, str], Any]:
    """(namespace, option name) -> value of an EB environment / configuration template."""
    return {
        (o.get("namespace"), o.get("optionName")): o.get("value")
        for o in resource.get("optionSettings", default=[]) or []
    }


def secret_env(tree: Tree) -> Iterator[SecretRef]:
    for resource in tree.resources:
        reader = SECRET_READERS.get(resource.type)
        if reader:
            yield from reader(resource)


def group_admits(
    rules: Iterable[Resource],
    *,
    group: Any,
    port: int,
    source: Any = None,
    destination: Any = None,
    unresolved: bool = False,
) -> bool:
    """Some standalone rule of ``group`` lets ``port`` in from the ``source`` group (ingress rules) or out to the
    ``destination`` group (egress rules). A rule whose port is a token counts only when ``unresolved``."""
    peer_key, peer = (
        ("sourceSecurityGroupId", source) if source is not None else ("destinationSecurityGroupId", destination)
    )
    for rule in rules:
        if rule.raw.get("groupId") == group and rule.raw.get(peer_key) == peer:
            ports = port_range(rule.props)
            if unresolved if ports is None else ports[0] <= port <= ports[1]:
                return True
    return False


def port_range(rule: dict[str, Any]) -> tuple[int, int] | None:
    """The literal (from, to) port range of an SG rule; all traffic is (0, 65535); None when unresolved."""
    protocol = str(rule.get("ipProtocol"))
    if protocol in ("-1", "all"):
        return 0, 65535
    if protocol not in ("tcp", "udp", "6", "17"):
        return None  # ICMP and friends have no ports (fromPort -1 means "any type" there)
    low, high = rule.get("fromPort"), rule.get("toPort", rule.get("fromPort"))
    if isinstance(low, int) and isinstance(high, int):
        return (low, high) if low >= 0 else (0, 65535)
    return None


def ingress_rules(tree: Tree) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """Every ingress rule: standalone ``SecurityGroupIngress`` resources and inline rules of security groups."""
    for resource in tree.of_type("AWS::EC2::SecurityGroupIngress"):
        yield resource, resource.props
    for resource in tree.of_type("AWS::EC2::SecurityGroup"):
        for rule in resource.get("securityGroupIngress", default=[]) or []:
            yield resource, rule


def logical_ref(resource: Resource) -> dict[str, str]:
    """``{"Ref": <logical id>}`` of a resource, as other props in its own stack refer to it."""
    return {"Ref": resource.stack.get_logical_id(resource.node)}


def points_at(alarm: Resource, resource: Resource) -> bool:
    """True when one of the alarm's dimension values references ``resource`` (Ref or GetAtt, maybe in a Join)."""
    logical_id = resource.stack.get_logical_id(resource.node)
    ref, get_att = json.dumps({"Ref": logical_id}), json.dumps({"Fn::GetAtt": [logical_id]})[:-2]
    values = [json.dumps(d.get("value"), sort_keys=True) for d in alarm.props.get("dimensions") or []]
    return any(ref in value or get_att in value for value in values)


WORLD = re.compile(r"^(0\.0\.0\.0/0|::/0)$")
