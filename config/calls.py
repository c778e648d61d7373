"""Service-to-service calls (``services.<name>.calls: [api, storefront]``): who calls which web service, by what URL.

A service names the stage's web services it calls (only a web service has a port). Each caller then receives a plain
setting ``<NAME>_URL`` per callee (``api`` -> ``API_URL``, ``order-api`` -> ``ORDER_API_URL``) with the callee's
address on the caller's own target, through the runtime values every target already delivers
(``runtime_environment``, so missing-env-vars checks it):

- ecs: ``http://<name>.<app>-<stage>.local:<port>`` (Cloud Map, private DNS); the callee's group admits the caller's
  group on the port, rules made from the caller's side (service-call-blocked).
- eks: ``http://<k8s Service>.<namespace>.svc.cluster.local:<port>``; nothing to open: every Fargate pod runs in the
  cluster security group, which admits itself.
- eb: the stage's load balancer, ``https://<eb domain name>`` (``http://<ALB DNS name>`` without a domain; a
  host-routed callee by its host); out through the NAT gateways to the internet-facing ALB (HTTPS, or port 80 opened
  on the caller without a domain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.schema import AppConfig
    from config.services import Service


def url_setting(callee: str) -> str:
    """The setting a caller receives for ``callee``: ``order-api`` -> ``ORDER_API_URL``."""
    return callee.upper().replace("-", "_") + "_URL"


def namespace_name(config: AppConfig) -> str:
    """The ECS target's private Cloud Map DNS namespace, where every called web service is registered."""
    return f"{config.app}-{config.stage}.local"


def k8s_service_name(config: AppConfig, callee: Service) -> str:
    """The Kubernetes Service of a web service: k8s/props.py ``workload_name`` (``<app>`` for the default web
    service, ``<app>-<name>`` for a routed one); tests/test_service_calls.py checks they agree."""
    return config.app if callee.route is None else f"{config.app}-{callee.name}"


def called_ports(config: AppConfig, service: Service) -> dict[str, int]:
    """``{callee: its port}`` for each web service ``service`` calls."""
    webs = {web.name: web for web in config.webs}
    out: dict[str, int] = {}
    for name in service.calls:
        port = webs[name].port
        assert port is not None, f"{name} is a web service"
        out[name] = port
    return out


def call_settings(
    config: AppConfig, service: Service, target: str, load_balancer_host: str | None = None
) -> dict[str, str]:
    """``{<NAME>_URL: url}`` of each service ``service`` calls, as reached from ``target``.

    ``load_balancer_host`` (eb only, used without a domain): the DNS name of the load balancer the stage's web
    services answer on in the Elastic Beanstalk stack (the shared ALB, or the one environment's endpoint), a token.
    """
    webs = {web.name: web for web in config.webs}
    out: dict[str, str] = {}
    for name, port in called_ports(config, service).items():
        callee = webs[name]
        if target == "ecs":
            url = f"http://{name}.{namespace_name(config)}:{port}"
        elif target == "eks":
            url = f"http://{k8s_service_name(config, callee)}.{config.eks.namespace}.svc.cluster.local:{port}"
        elif target == "eb":
            host = config.domain_name("eb") or load_balancer_host
            if callee.route is not None and callee.route.hosts:
                host = callee.route.hosts[0]  # call_problems: an exact name the eb target answers in its zone
            assert host is not None, "an eb caller needs the load balancer's host name without a domain"
            url = f"{'https' if config.domain else 'http'}://{host}"
        else:
            raise ValueError(f"unknown target {target!r}")
        out[url_setting(name)] = url
    return out


def call_problems(config: AppConfig) -> list[tuple[str, str]]:
    """(path, ``[config] text``) for each ``calls`` entry the stage cannot have."""
    specs = config.service_specs
    webs = [name for name, spec in specs.items() if spec.kind == "web"]
    problems: list[tuple[str, str]] = []
    for name, spec in specs.items():
        received = spec.settings if spec.settings is not None else list(config.settings)
        for index, callee in enumerate(spec.calls):
            path = f"services.{name}.calls.{index}"
            target = specs.get(callee)
            if target is None or target.kind != "web":
                what = "no service" if target is None else f"a {target.kind}, which has no port"
                problems.append(
                    (
                        path,
                        f"[config] {callee!r} is {what}; a service calls the stage's web services "
                        f"({', '.join(webs)}) by name",
                    )
                )
                continue
            if callee == name:
                problems.append((path, "[config] a service does not call itself through the network; remove it"))
                continue
            if callee in spec.calls[:index]:
                problems.append((path, f"[config] {callee!r} is listed twice; list each service once"))
                continue
            setting = url_setting(callee)
            if setting in received:
                problems.append(
                    (
                        path,
                        f"[config] {name} receives the setting {setting} and the deployment fills it in for this "
                        f"call; remove {setting} from settings (or from services.{name}.settings)",
                    )
                )
            hosts = target.route.hosts if target.route is not None else []
            if "eb" in config.targets and hosts and hosts[0] not in config.route_hosts("eb"):
                problems.append(
                    (
                        path,
                        f"[config] on Elastic Beanstalk a call goes through the stage's load balancer by name, and "
                        f"{callee} is routed by host {hosts[0]!r}, a name the eb target does not answer in the "
                        "stage's zone; give it a path route (paths: [/<prefix>/*]) or list eb first in targets",
                    )
                )
    return problems
