"""Services of a stage: one declaration per process (web, worker, job), read by every target; and the migrate step.

The stage file's ``services:`` map holds what differs per process; ``resolve_services`` fills the rest from the
stage's common keys (image, ``server``, ``ecs``/``eks`` sizing, health contract, settings) into one ``Service``
per process. A stage without ``services:`` has one ``web`` service built from those keys, as before services
existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from config.kinds import store_of
from config.resources import Access, resource_permissions
from config.routes import PRIORITY_STEP, Route
from config.schedule import Schedule, ScheduleError, parse_schedule

if TYPE_CHECKING:
    from config.schema import AppConfig, EcsSizing, EgressRule, EksSizing, HealthContract, ServerConfig, ServiceSpec

ServiceKind = Literal["web", "worker", "job"]
MIGRATE = "migrate"  # the name the migration step's task, log stream and Kubernetes Job carry


@dataclass(frozen=True)
class Service:
    """One process of the stage, fully resolved: what every target builds from.

    ``settings``: the names it receives (plain and secret); ``secrets``: the ones among them delivered from
    Parameter Store (secrets and ``{from: ...}`` parts), which its principal may read and nothing else.
    ``uses_database``/``uses_cache``: it receives a part of the database / Redis connection (a URL, the password
    or token, a host ...), so its compute is admitted to PostgreSQL / Redis (and only then).
    ``uses``: the app resources it uses (``services.<name>.uses``); ``permissions`` ends with the grants they need
    (config/resources.py ``resource_permissions``), so every target grants them like declared permissions.
    """

    name: str
    kind: ServiceKind | Literal["migrate"]
    image: str
    command: tuple[str, ...] | None
    settings: tuple[str, ...]
    secrets: tuple[str, ...]
    uses_database: bool
    uses_cache: bool
    server: ServerConfig
    ecs: EcsSizing
    eks: EksSizing
    health: HealthContract | None = None  # web only
    port: int | None = None  # web only
    schedule: Schedule | None = None  # job only
    timeout_minutes: int = 0  # job and migrate
    retries: int = 0  # job
    target: str | None = None  # job: the one target it runs on (twice a night would be a bug)
    permissions: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # its own AWS (actions, resources)
    egress: tuple[tuple[int, str, str], ...] = ()  # declared outbound (port, IPv4 CIDR, description) beyond HTTPS
    route: Route | None = None  # web: the requests it serves on the shared load balancer; None: the default web
    uses: tuple[tuple[str, Access], ...] = ()  # the stage's resources it uses (name, access): settings + grants
    scale_on_queue: tuple[str, int] | None = None  # worker: (queue, messages per task) its task count follows
    redis_db: int | None = None  # its own Redis database: its redis_url settings read <NAME>_DB<n>
    calls: tuple[str, ...] = ()  # the web services it calls (config/calls.py): a <NAME>_URL setting each

    def runs_on(self, target: str) -> bool:
        """Workers, web and the migration step run on every enabled target; a job on its one target."""
        return self.kind != "job" or self.target == target

    @property
    def is_web(self) -> bool:
        return self.kind == "web"

    @property
    def health_port(self) -> int | None:
        """The port its health contract is checked on (web only): the contract's own, else the service port."""
        return (self.health.port or self.port) if self.health is not None else None

    @property
    def connections_per_unit(self) -> int:
        """PostgreSQL connections one task / pod of this service can open (0 when it does not use the database)."""
        return self.server.connections_per_unit if self.uses_database else 0


def secret_uses(parameters: dict[str, str], names: tuple[str, ...]) -> tuple[bool, bool]:
    """(uses the database, uses Redis) for a process receiving ``names``; ``parameters``: setting -> kind."""
    stores = {store_of(parameters[name]) for name in names if name in parameters}
    return "database" in stores, "cache" in stores


def schedule_or_error(text: str) -> Schedule:
    try:
        return parse_schedule(text)
    except ScheduleError as error:
        raise ValueError(f"[job-schedule-invalid] {error}") from None


def egress_rules(declared: list[EgressRule]) -> tuple[tuple[int, str, str], ...]:
    """``(port, CIDR, description)`` for each destination of each declared egress entry, in the file's order."""
    return tuple(
        (rule.port, cidr, rule.description or f"declared egress: {'internet' if rule.to else cidr} on {rule.port}")
        for rule in declared
        for cidr in rule.destinations
    )


def pascal(name: str) -> str:
    """A service name as a construct id part: ``nightly-report`` -> ``NightlyReport``."""
    return "".join(part.capitalize() for part in name.split("-"))


def web_routes(specs: Mapping[str, ServiceSpec]) -> list[tuple[str, Route]]:
    """(name, route) of each routed web service; a route without ``priority`` gets 10, 20 ... in file order."""
    routed = [(name, spec.route) for name, spec in specs.items() if spec.kind == "web" and spec.route is not None]
    return [
        (name, Route(tuple(r.paths), tuple(r.hosts), r.priority or PRIORITY_STEP * (index + 1)))
        for index, (name, r) in enumerate(routed)
    ]


def named_lines(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``"<name>: text"`` lines as (name, text)."""
    for line in lines:
        name, _, text = line.partition(": ")
        yield name, text


def resolve_services(config: AppConfig) -> tuple[Service, ...]:
    """Every process of the stage (web first), then the migration step when ``migrate`` is set."""
    secrets = config.parameter_settings
    routes = dict(web_routes(config.service_specs))
    out: list[Service] = []
    for name, spec in config.service_specs.items():
        names = tuple(spec.settings) if spec.settings is not None else tuple(config.settings)
        uses_db, uses_cache = secret_uses(secrets, names)
        web = spec.kind == "web"
        uses = tuple(spec.uses.items())
        declared = tuple(
            (tuple(p.actions), tuple(p.resources))
            for p in (spec.permissions if spec.permissions is not None else config.permissions if web else [])
        )
        out.append(
            Service(
                name=name,
                kind=spec.kind,
                image=spec.image or config.image,
                command=tuple(spec.command) if spec.command else None,
                settings=names,
                secrets=tuple(n for n in names if n in secrets),
                uses_database=uses_db,
                uses_cache=uses_cache,
                server=spec.server or config.server,
                ecs=spec.ecs or config.ecs,
                eks=spec.eks or config.eks,
                health=(spec.health or config.health) if web else None,
                port=(spec.port or config.container_port) if web else None,
                schedule=schedule_or_error(spec.schedule) if spec.schedule else None,
                timeout_minutes=spec.timeout_minutes,
                retries=spec.retries,
                target=(spec.target or (config.targets[0] if config.targets else None)) if spec.kind == "job" else None,
                permissions=declared + resource_permissions(config, uses),
                egress=egress_rules(spec.egress if spec.egress is not None else config.egress),
                route=routes.get(name),
                uses=uses,
                redis_db=spec.redis_db,
                scale_on_queue=(spec.scale_on_queue.queue, spec.scale_on_queue.messages_per_task)
                if spec.scale_on_queue
                else None,
                calls=tuple(spec.calls),
            )
        )
    out.sort(key=lambda s: (s.kind != "web", s.kind != "worker", s.name))
    if config.migrate is not None:
        migrate = config.migrate
        names = tuple(migrate.settings) if migrate.settings is not None else tuple(config.settings)
        uses_db, uses_cache = secret_uses(secrets, names)
        out.append(
            Service(
                name=MIGRATE,
                kind="migrate",
                image=migrate.image or config.image,
                command=tuple(migrate.command),
                settings=names,
                secrets=tuple(n for n in names if n in secrets),
                uses_database=uses_db,
                uses_cache=uses_cache,
                server=config.server.model_copy(update={"workers": 1}),
                ecs=config.ecs,
                eks=config.eks,
                timeout_minutes=migrate.timeout_minutes,
                egress=egress_rules(config.egress),
            )
        )
    return tuple(out)
