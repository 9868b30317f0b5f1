"""Run code in a real Jupyter kernel and collect what it printed (for the kernel tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # "EName: message" when the cell raised
    data: list[dict[str, Any]] = field(default_factory=list)  # display_data / execute_result


def run(client: BlockingKernelClient, code: str, timeout: float = 60) -> Result:
    """Execute ``code`` and gather its output."""
    result = Result()

    def on_output(message: dict[str, Any]) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            if content["name"] == "stdout":
                result.stdout += content["text"]
            else:
                result.stderr += content["text"]
        elif kind in ("display_data", "execute_result"):
            result.data.append(content["data"])
        elif kind == "error":
            result.error = f"{content['ename']}: {content['evalue']}"

    client.execute_interactive(code, timeout=timeout, output_hook=on_output)
    return result


@contextmanager
def kernel(
    env: dict[str, str] | None = None,
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh python3 kernel of this environment, shut down afterwards."""
    kernel_env = {**os.environ, **(env or {})}
    manager, client = start_new_kernel(kernel_name="python3", env=kernel_env)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
