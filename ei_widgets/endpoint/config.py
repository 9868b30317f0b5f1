"""What the kernel tells the server process it starts: one JSON line on the server's stdin (the
token among it, never on a command line that every user of the machine can read)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["ServerConfig", "config_line"]


@dataclass(frozen=True)
class ServerConfig:
    """What the kernel tells its server (one JSON line on the server's stdin)."""

    model_path: str
    endpoint_name: str
    token: str
    instance_type: str
    accelerator_type: str | None
    instance_count: int
    queue_size: int
    clock: str  # "paced" | "virtual"
    precision: str
    parent_pid: int  # exit when this process is gone (0: do not watch)


def config_line(config: ServerConfig) -> str:
    """The configuration as the line the server reads."""
    return json.dumps(asdict(config)) + "\n"
