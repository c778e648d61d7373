"""route-default-missing: a listener with routes answers unrouted requests with 404, and one service is the default."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, compact, prop
from constructs.guards.route_overlap import listener_key, rules_by_listener


class RouteDefaultMissing:
    """Compliant: a listener that has forwarding rules (several web services) has a fixed-response default action
    (404), never a forward to an arbitrary service's target group, and one catch-all rule (path ``/*``, no host)
    sends everything else to the stage's default web service."""

    id = "route-default-missing"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        rules = rules_by_listener(tree)
        for listener in tree.of_type("AWS::ElasticLoadBalancingV2::Listener"):
            ref = listener_key(listener.stack.stack_name, {"Ref": listener.stack.get_logical_id(listener.node)})
            mine = rules.get(ref, [])
            forwarding = [
                rule for rule, _ in mine if any(a.get("type") == "forward" for a in rule.props.get("actions") or [])
            ]
            if not forwarding:
                continue  # one web service: the listener forwards to it, or a redirect listener
            for action in listener.props.get("defaultActions") or []:
                if prop(action, "type") == "forward":
                    target = prop(action, "targetGroupArn") or prop(action, "forwardConfig")
                    yield Finding(
                        self.id,
                        listener.path,
                        f"default action forwards to {compact(target)}",
                        "requests no route takes must not reach an arbitrary service: answer 404 (fixed-response) "
                        "and route the default web service (the one without route:) with a catch-all rule",
                    )
            catch_all = [r for r, route in mine if route is not None and route.paths == ("/*",) and not route.hosts]
            if not catch_all:
                yield Finding(
                    self.id,
                    listener.path,
                    f"{len(forwarding)} routed rule(s), no catch-all",
                    "leave route: out on the one web service that answers every other request (its rule is /*, "
                    "after every other)",
                )


RULE = RouteDefaultMissing()
