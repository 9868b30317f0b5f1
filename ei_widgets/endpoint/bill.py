"""An endpoint's bill: (instance + accelerator) x instances, per second, while it exists.

Each endpoint is its own session in the ledger (``sessions.endpoint`` holds its name, so
``usage(by="endpoint")`` groups by endpoint), with one ``instance`` interval (the instance price x
the instance count) and one ``accelerator`` interval (likewise) from creation to deletion. The
kernel that deployed it owns the session (its pid): while it lives a ticker thread writes a
heartbeat every few seconds; when it dies without deleting the endpoint, the ledger's recovery
(any later ``open_ledger``) closes the session at its last heartbeat, as for a kernel's own
meter, and the server has exited by then (it watches the kernel).
"""

from __future__ import annotations

import threading
import time
import warnings
from decimal import Decimal

from ei_widgets.billing.ledger import IntervalProgress, Ledger, LedgerWarning, open_ledger
from ei_widgets.billing.meters import DEFAULT_HEARTBEAT_S
from ei_widgets.common.money import dollars, micro_per_hour, rate_dollars, us
from ei_widgets.device.catalog import Catalog
from ei_widgets.errors import LedgerError

__all__ = ["EndpointBill"]


class EndpointBill:
    """The running bill of one endpoint, written to the ledger at ``ledger_path`` (default: the
    kernel's ledger, ``$EI_WIDGETS_LEDGER`` or Jupyter's data directory)."""

    def __init__(
        self,
        endpoint_name: str,
        instance_type: str,
        accelerator_type: str | None,
        instance_count: int,
        catalog: Catalog,
        *,
        ledger_path: str | None = None,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    ) -> None:
        instance = catalog.instance(instance_type)
        self.instance_rate = micro_per_hour(instance.price_per_hour) * instance_count
        self.accelerator_rate = (
            micro_per_hour(catalog.accelerator(accelerator_type).price_per_hour) * instance_count
            if accelerator_type is not None
            else 0
        )
        self._start = time.monotonic()
        self._stopped_at: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        wall = time.time()
        self.ledger: Ledger | None = open_ledger(ledger_path)
        self.session_id: int | None = None
        self._intervals: list[int] = []
        try:
            self.session_id = self.ledger.open_session(
                instance=instance.name,
                rate_micro=self.instance_rate,
                started_at=wall,
                heartbeat_period=heartbeat_s,
                notebook=endpoint_name,
                endpoint=endpoint_name,
            )
            self._intervals.append(
                self.ledger.open_interval(
                    self.session_id,
                    kind="instance",
                    name=instance.name,
                    rate_micro=self.instance_rate,
                    offset_us=0,
                    started_at=wall,
                )
            )
            if accelerator_type is not None:
                self._intervals.append(
                    self.ledger.open_interval(
                        self.session_id,
                        kind="accelerator",
                        name=accelerator_type,
                        rate_micro=self.accelerator_rate,
                        offset_us=0,
                        started_at=wall,
                    )
                )
        except LedgerError as error:  # the endpoint runs on; its cost is still shown
            warnings.warn(f"endpoint bill not recorded: {error}", LedgerWarning, stacklevel=2)
            self.ledger = None
        self._ticker = threading.Thread(
            target=self._beat, args=(heartbeat_s,), name="ei-endpoint-bill", daemon=True
        )
        self._ticker.start()

    @property
    def rate_per_hour(self) -> Decimal:
        """Dollars per hour of the whole endpoint (every instance and accelerator)."""
        return rate_dollars(self.instance_rate + self.accelerator_rate)

    def elapsed(self) -> float:
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return end - self._start

    def cost_so_far(self) -> Decimal:
        """Dollars billed since creation (per second: rate x seconds)."""
        return dollars((self.instance_rate + self.accelerator_rate) * us(self.elapsed()))

    def _write(self, close: bool) -> None:
        if self.ledger is None or self.session_id is None:
            return
        elapsed_us = us(self.elapsed())
        progress = {i: IntervalProgress(elapsed_us) for i in self._intervals}
        try:
            if close:
                self.ledger.close_session(
                    self.session_id,
                    elapsed_us=elapsed_us,
                    wall=time.time(),
                    intervals=progress,
                    reason="delete",
                )
            else:
                self.ledger.heartbeat(
                    self.session_id, elapsed_us=elapsed_us, wall=time.time(), intervals=progress
                )
        except LedgerError as error:
            warnings.warn(f"endpoint bill not written: {error}", LedgerWarning, stacklevel=2)

    def _beat(self, period: float) -> None:
        while not self._done.wait(period):
            with self._lock:
                if self._stopped_at is None:
                    self._write(close=False)

    def stop(self) -> Decimal:
        """Stop billing (idempotent); returns the final cost."""
        with self._lock:
            if self._stopped_at is None:
                self._stopped_at = time.monotonic()
                self._done.set()
                self._write(close=True)
                if self.ledger is not None:
                    self.ledger.close()
        return self.cost_so_far()
