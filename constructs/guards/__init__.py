"""Guards: one rule per catalogue id, registered on the App in one place by ``register_guards``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

import cdk_nag
from aws_cdk import App, Validations

from config.schema import AppConfig
from constructs.guards.framework import Finding, GuardValidation, Rule, Tree

__all__ = ["RULES", "Finding", "Rule", "Tree", "register_guards"]

_HELPERS = {"framework", "k8s"}  # modules of this package that are not rules


def _discover() -> tuple[Rule, ...]:
    """Every ``RULE`` of this package: one module per catalogue id, named after it (``-`` -> ``_``)."""
    rules: list[Rule] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module not in _HELPERS:
            rule: Rule = importlib.import_module(f"{__name__}.{module}").RULE
            if rule.id.replace("-", "_") != module:
                raise RuntimeError(
                    f"constructs/guards/{module}.py defines rule {rule.id!r}; name the file after its id"
                )
            rules.append(rule)
    return tuple(rules)


RULES: tuple[Rule, ...] = _discover()


def register_guards(app: App, config: AppConfig, *, extra_rules: Iterable[Rule] = (), nag: bool = True) -> None:
    """Attach every rule (plus a target's ``extra_rules``) and cdk-nag's AwsSolutions pack to ``app``.

    Called by ``app.py`` and by the tests, so both enforce the same policy. ``nag=False`` is for focused
    rule tests that build deliberately incomplete stacks.
    """
    app.node.add_validation(GuardValidation(app, config, (*RULES, *extra_rules)))
    if nag:
        Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
