"""The stack: one embedded store per service, the broker, the services, the gateway.

`make run` and the stack tests both use `Stack`, so the system runs one way.
Every port and URL has a default that docker-compose.yml mirrors; each can be
changed through the environment (`USERS_PORT`, `USERS_MONGO_URL`, `AMQP_URL`...).

`VECHE_WORKERS=N` runs N processes of each service, sharing its store and its
queue: instance k (from 1) is named `polls`, `polls-2`..., listens on the base
port + 10*(k-1) (or `POLLS_2_PORT`...), and the gateway gets every instance in
its subgraph URL (`http://...:4002/graphql|http://...:4012/graphql`). The
gateway itself stays one process on its one port.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from veche_kit import totp
from veche_stack.broker import PrivateRabbit, amqp_answers, rabbitmq_installed
from veche_stack.leftovers import LeftoverError, find_holdings
from veche_stack.processes import Process, free_port, python_module
from veche_stack.topology import declare_queues_now

log = logging.getLogger(__name__)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Where front ends are served while they are developed (create-react-app, Vite, Vue CLI,
# Angular); `CORS_ORIGINS` replaces the list.
LOCAL_FRONT_ENDS = ",".join(
    f"http://{host}:{port}"
    for host in ("localhost", "127.0.0.1")
    for port in (3000, 4200, 5173, 8080)
)
PRIVATE_RABBIT_PORT = 5682
# Instance k of a service listens on its base port + this * (k - 1) by default.
INSTANCE_PORT_STEP = 10


@dataclass(frozen=True)
class ServiceSpec:
    """A deployable of the stack and its default ports."""

    name: str
    module: str
    port: int
    mongo_port: int | None = None  # None: keeps no store (the gateway)

    @property
    def env_prefix(self) -> str:
        return self.name.upper() + "_"

    def mongo_db(self, environ: Mapping[str, str] = os.environ) -> str:
        """The database the service keeps its collections in (`<NAME>_MONGO_DB`)."""
        return environ.get(f"{self.env_prefix}MONGO_DB", f"veche_{self.name}")


SERVICES = (
    ServiceSpec("users", "veche_users", 4001, 27101),
    ServiceSpec("polls", "veche_polls", 4002, 27102),
    ServiceSpec("issues", "veche_issues", 4003, 27103),
)
GATEWAY = ServiceSpec("gateway", "veche_gateway", 4000)


@dataclass
class StackConfig:
    """Where everything runs. `from_env` for `make run`, `for_tests` for free ports."""

    data_dir: Path
    amqp_url: str | None
    ports: dict[str, int]
    mongo_ports: dict[str, int]
    mongo_urls: dict[str, str] = field(default_factory=dict)  # given real MongoDB URLs
    admin_email: str = "admin@veche.local"
    admin_password: str | None = None
    admin_totp_secret: str | None = None  # the admin's two-factor secret (base32)
    demo_data: bool = True
    production: bool = False  # VECHE_ENV=production: real stores only
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # VECHE_WORKERS: processes of each service

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> StackConfig:
        specs = (*SERVICES, GATEWAY)
        workers = _workers(environ)
        return cls(
            data_dir=Path(environ.get("VECHE_DATA_DIR", ".data")).resolve(),
            amqp_url=environ.get("AMQP_URL") or None,
            ports={
                **{s.name: int(environ.get(f"{s.env_prefix}PORT", s.port)) for s in specs},
                **_instance_ports(environ, workers),
            },
            mongo_ports={
                s.name: int(environ.get(f"{s.env_prefix}MONGO_PORT", s.mongo_port))
                for s in SERVICES
                if s.mongo_port
            },
            mongo_urls={
                s.name: environ[f"{s.env_prefix}MONGO_URL"]
                for s in SERVICES
                if environ.get(f"{s.env_prefix}MONGO_URL")
            },
            admin_email=environ.get("VECHE_ADMIN_EMAIL", "admin@veche.local"),
            admin_password=environ.get("VECHE_ADMIN_PASSWORD") or None,
            admin_totp_secret=environ.get("VECHE_ADMIN_TOTP_SECRET") or None,
            demo_data=environ.get("VECHE_DEMO_DATA", "true").lower() not in ("false", "0", "no"),
            production=environ.get("VECHE_ENV", "development") == "production",
            workers=workers,
        )

    @classmethod
    def for_tests(cls, data_dir: Path, amqp_url: str = DEFAULT_AMQP_URL) -> StackConfig:
        return cls(
            data_dir=data_dir,
            amqp_url=amqp_url,
            ports={s.name: free_port() for s in (*SERVICES, GATEWAY)},
            mongo_ports={s.name: free_port() for s in SERVICES},
            admin_email="admin@veche.test",
            admin_password="admin-" + secrets.token_hex(8),
            admin_totp_secret=totp.new_secret(),
        )


def _workers(environ: Mapping[str, str]) -> int:
    raw = environ.get("VECHE_WORKERS", "1").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise RuntimeError(f"VECHE_WORKERS={raw!r}: give the number of processes per service")
    return int(raw)


def instance_names(spec: ServiceSpec, workers: int) -> list[str]:
    """`polls`, `polls-2`, ...: the processes of one service."""
    return [spec.name, *(f"{spec.name}-{k}" for k in range(2, workers + 1))]


def _instance_ports(environ: Mapping[str, str], workers: int) -> dict[str, int]:
    """The ports given for instances past the first (`POLLS_2_PORT`...)."""
    found: dict[str, int] = {}
    for spec in SERVICES:
        for name in instance_names(spec, workers)[1:]:
            variable = name.upper().replace("-", "_") + "_PORT"
            if environ.get(variable):
                found[name] = int(environ[variable])
    return found


def mongo_url(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


class Stack:
    """Starts and stops every process of the stack, in dependency order."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, Process] = {}
        self.rabbit: PrivateRabbit | None = None
        self.amqp_url = config.amqp_url or DEFAULT_AMQP_URL
        self.services = list(SERVICES)
        self.gateway: ServiceSpec | None = GATEWAY  # None: a test of services alone

    @property
    def logs(self) -> Path:
        return self.config.data_dir / "logs"

    def url(self, name: str, path: str = "/graphql") -> str:
        """Where the process `name` (`polls`, `polls-2`, `gateway`) answers."""
        return f"http://127.0.0.1:{self.port(name)}{path}"

    def port(self, name: str) -> int:
        if name in self.config.ports:
            return self.config.ports[name]
        base, _, k = name.rpartition("-")  # polls-2: base port + INSTANCE_PORT_STEP
        return self.config.ports[base] + INSTANCE_PORT_STEP * (int(k) - 1)

    def instances(self, spec: ServiceSpec) -> list[str]:
        return instance_names(spec, self.config.workers)

    def store_url(self, name: str) -> str:
        return self.config.mongo_urls.get(name) or mongo_url(self.config.mongo_ports[name])

    def admin_credentials(self) -> tuple[str, str]:
        """The admin's email and password: given, or generated once and kept in the data dir."""
        if self.config.admin_password:
            return self.config.admin_email, self.config.admin_password
        path = self.config.data_dir / "admin-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12) + "1")
            path.chmod(0o600)
        return self.config.admin_email, path.read_text().strip()

    def admin_totp_secret(self) -> str:
        """The admin's TOTP secret: given, or generated once and kept in the data dir.
        `python -m veche_kit.totp SECRET` (or an authenticator app) gives its codes."""
        if self.config.admin_totp_secret:
            return self.config.admin_totp_secret
        path = self.config.data_dir / "admin-totp-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(totp.new_secret())
            path.chmod(0o600)
        return path.read_text().strip()

    def _python(
        self, name: str, module: str, *args: str, env: Mapping[str, str] | None = None
    ) -> Process:
        process = Process(name, python_module(module, *args), self.logs / f"{name}.log", env or {})
        self.processes[name] = process
        return process

    @property
    def embedded_stores(self) -> list[ServiceSpec]:
        """The services whose store the stack runs itself (no `*_MONGO_URL` given)."""
        return [s for s in self.services if s.name not in self.config.mongo_urls]

    def store_dir(self, spec: ServiceSpec) -> Path:
        return self.config.data_dir / "mongo" / spec.name

    def check_can_start(self) -> None:
        """Refuses, in one line each, what would fail half-way: the embedded store in
        production, and ports or data locks a leftover process holds."""
        if self.config.production and self.embedded_stores:
            names = ", ".join(f"{s.env_prefix}MONGO_URL" for s in self.embedded_stores)
            raise RuntimeError(
                f"VECHE_ENV=production does not run on the embedded store: set {names} "
                "to your MongoDB replica set"
            )
        ports = {name: self.port(name) for s in self.services for name in self.instances(s)}
        if self.gateway is not None:
            ports["gateway"] = self.config.ports["gateway"]
        for spec in self.embedded_stores:
            ports[f"{spec.name} store"] = self.config.mongo_ports[spec.name]
        holdings = find_holdings(ports, {s.name: self.store_dir(s) for s in self.embedded_stores})
        if holdings:
            raise LeftoverError(holdings)

    def start_stores(self) -> None:
        for spec in self.embedded_stores:
            path = self.store_dir(spec)
            path.mkdir(parents=True, exist_ok=True)
            port = self.config.mongo_ports[spec.name]
            process = self._python(
                f"mongo-{spec.name}",
                "veche_stack.mongod",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(path),
                "--log-level",
                "WARNING",
            )
            process.start()
        for spec in self.embedded_stores:
            self.processes[f"mongo-{spec.name}"].wait_port(self.config.mongo_ports[spec.name])

    def start_broker(self) -> None:
        if amqp_answers(self.amqp_url):
            return
        if self.config.amqp_url is not None or not rabbitmq_installed():
            raise RuntimeError(
                f"No RabbitMQ answers at {self.amqp_url}. Start one (e.g. `apt-get install rabbitmq-server` "
                "and `rabbitmq-server -detached`, or `docker run -p 5672:5672 rabbitmq:4`) or set AMQP_URL."
            )
        self.rabbit = PrivateRabbit(
            self.config.data_dir / "rabbitmq", PRIVATE_RABBIT_PORT, PRIVATE_RABBIT_PORT + 20000
        )
        self.rabbit.start()
        self.amqp_url = self.rabbit.url

    def service_env(self, spec: ServiceSpec, instance: str | None = None) -> dict[str, str]:
        """The environment of the service's process `instance` (its first by default)."""
        email, password = self.admin_credentials()
        prefix = spec.env_prefix
        return {
            f"{prefix}PORT": str(self.port(instance or spec.name)),
            "VECHE_INSTANCE": instance or spec.name,  # how the runner tells them apart
            f"{prefix}MONGO_URL": self.store_url(spec.name),
            f"{prefix}DEMO_DATA": "true" if self.config.demo_data else "false",
            "AMQP_URL": self.amqp_url,
            "VECHE_DATA_DIR": str(self.config.data_dir),
            "VECHE_JWKS_URL": self.url("users", "/.well-known/jwks.json"),
            "VECHE_ADMIN_EMAIL": email,
            "VECHE_ADMIN_PASSWORD": password,
            "VECHE_ADMIN_TOTP_SECRET": self.admin_totp_secret(),
            # Photo URLs name the gateway, which passes /photos/... on to issues.
            "ISSUES_PHOTO_BASE_URL": os.environ.get(
                "ISSUES_PHOTO_BASE_URL", self.url("gateway", "")
            ),
            **self.config.extra_env,
        }

    def start_service(self, spec: ServiceSpec, instance: str | None = None) -> Process:
        name = instance or spec.name
        process = self._python(name, spec.module, env=self.service_env(spec, name))
        process.start()
        return process

    def start_services(self) -> None:
        """The first instance of each service, then (once those are ready: the users
        service creates its signing key and the demo accounts once) the others."""
        for spec in self.services:
            self.start_service(spec)
        for spec in self.services:
            self.processes[spec.name].wait_http(self.url(spec.name, "/ready"))
        others = [(spec, name) for spec in self.services for name in self.instances(spec)[1:]]
        for spec, name in others:
            self.start_service(spec, name)
        for _, name in others:
            self.processes[name].wait_http(self.url(name, "/ready"))

    def subgraph_url(self, spec: ServiceSpec) -> str:
        """The service's GraphQL URL for the gateway: every instance, `a|b`."""
        return "|".join(self.url(name) for name in self.instances(spec))

    def start_gateway(self) -> None:
        if self.gateway is None:
            return
        subgraphs = ",".join(f"{s.name}={self.subgraph_url(s)}" for s in self.services)
        env = {
            "SUBGRAPHS": subgraphs,
            "CORS_ORIGINS": os.environ.get("CORS_ORIGINS", LOCAL_FRONT_ENDS),
            "HOST": "127.0.0.1",
            "PORT": str(self.config.ports["gateway"]),
            **self.config.extra_env,
        }
        process = self._python("gateway", self.gateway.module, env=env)
        process.start()
        process.wait_http(self.url("gateway", "/ready"))
        self.wait_composed()

    def wait_composed(self, timeout: float = 30.0) -> None:
        """Waits until the gateway serves every subgraph: a subgraph slow to answer its
        first SDL fetch is left out until the gateway's next poll, and a stack that says
        it is up must mean the whole API. Past `timeout` it says who is missing and goes
        on: the gateway keeps polling and serves the rest meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(self.url("gateway", "/ready"), timeout=5) as response:
                left_out = json.loads(response.read()).get("leftOut")
            if not left_out:
                return
            if time.monotonic() > deadline:
                log.warning("the gateway serves without %s", left_out)
                return
            time.sleep(0.5)

    def start(self) -> None:
        self.check_can_start()
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_stores()
            self.start_broker()
            namespace = self.config.extra_env.get(
                "VECHE_NAMESPACE", os.environ.get("VECHE_NAMESPACE", "")
            )
            declare_queues_now(self.amqp_url, [s.name for s in self.services], namespace)
            self.start_services()
            self.start_gateway()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """The gateway, then the services together, then their stores together."""
        names = list(self.processes)
        tiers = [
            [n for n in names if n == "gateway"],
            [n for n in names if n != "gateway" and not n.startswith("mongo-")],
            [n for n in names if n.startswith("mongo-")],
        ]
        for tier in tiers:
            for name in tier:
                self.processes[name].terminate()
            for name in tier:
                self.processes[name].stop()
        if self.rabbit is not None:
            self.rabbit.stop()
