"""The RabbitMQ the stack uses: the one at AMQP_URL, or a private node.

A private node is started (when `rabbitmq-server` is installed and nothing
answers at AMQP_URL) under the data directory, beside any system broker.
Fault tests start one too, so they can stop and restart the broker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from veche_stack.processes import port_open

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def amqp_answers(url: str) -> bool:
    parsed = urlparse(url)
    return port_open(parsed.hostname or "127.0.0.1", parsed.port or 5672)


def rabbitmq_installed() -> bool:
    return (RABBIT_BIN / "rabbitmq-server").exists() or shutil.which("rabbitmq-server") is not None


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of our own, e.g. `veche@localhost` on port 5682."""

    base: Path
    port: int
    dist_port: int
    name: str = "veche"
    config_file: Path | None = None  # a rabbitmq.conf, e.g. one that loads definitions

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        self.base.mkdir(parents=True, exist_ok=True)
        plugins = self.base / "enabled_plugins"
        plugins.write_text("[].\n")
        return {
            **os.environ,
            "HOME": str(self.base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            **({"RABBITMQ_CONFIG_FILE": str(self.config_file)} if self.config_file else {}),
        }

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self._env(),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self, timeout: float = 60.0) -> None:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmq-server"), "-detached"],
            env=self._env(),
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.wait_open(timeout)

    def wait_open(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ node {self.node} did not open port {self.port}")
            time.sleep(0.2)

    def stop_app(self) -> None:
        """Closes the AMQP port (an outage) while the node keeps running."""
        self._ctl("stop_app")

    def start_app(self) -> None:
        self._ctl("start_app")
        self.wait_open()

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._ctl("stop")
