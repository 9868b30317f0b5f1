"""The meter's writes to its ledger: in order, retried with back-off, never lost to a hiccup.

Another process holding the SQLite write lock past the busy timeout (a backup, a ``sqlite3``
shell, a VACUUM), a full disk or a network filesystem hiccup make a write fail for a while. The
writer then keeps every write not yet made (sessions and intervals to open or close, in order;
a heartbeat always writes the whole time so far, so none is queued), warns once, and tries again
at the next heartbeat after a back-off that doubles up to ``MAX_BACKOFF_S``. Once the ledger
takes writes again, everything is written and the session goes on as if nothing happened.

Only a ledger that can never be written again (closed, or a read-only one) ends writing: the meter
then goes on in memory. A write that fails for any other reason (a value SQLite cannot store, an
error nobody expected) can never succeed by waiting: it is dropped with the same one warning, and
the writes after it go on, so no exception ever reaches the meter or jams the queue. A forked
child never writes its parent's session.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime

from ei_widgets.billing.charges import Segment, Work
from ei_widgets.billing.ledger import IntervalProgress, Ledger, LedgerWarning
from ei_widgets.common.money import us
from ei_widgets.errors import LedgerError

__all__ = ["MAX_BACKOFF_S", "LedgerWriter"]

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0

_Op = Callable[[Ledger], None]


def progress(seg: Segment, now: float, work: Work) -> IntervalProgress:
    """What the ledger stores for a segment's interval at ``now``."""
    done = work.since(seg.work0)
    return IntervalProgress(
        duration_us=us(now - seg.ledger_start),
        inferences=done.inferences,
        errors=done.errors,
        simulated_s=done.simulated_s,
    )


def _kind(exc: BaseException) -> str:
    """What a failed write calls for: ``"dead"`` (the ledger can never be written again),
    ``"retry"`` (locked, disk full, I/O: it may work later) or ``"drop"`` (this write can never
    succeed: a value SQLite refuses, or any error nobody expected)."""
    if isinstance(exc, (sqlite3.ProgrammingError, LedgerError)):
        return "dead"
    if isinstance(
        exc,
        (
            sqlite3.IntegrityError,
            sqlite3.DataError,
            sqlite3.InterfaceError,
            sqlite3.NotSupportedError,
        ),
    ):
        return "drop"
    if isinstance(exc, (sqlite3.Error, OSError)):
        return "retry"
    return "drop"


def _dropped(exc: BaseException) -> str:
    return (
        f"ei_widgets ledger write failed ({type(exc).__name__}: {exc}); that write was skipped,"
        " metering goes on and later writes are still made."
    )


class LedgerWriter:
    """Every write of one meter to its ledger (``None``: the meter keeps the bill in memory)."""

    def __init__(
        self,
        ledger: Ledger | None,
        *,
        heartbeat_period: float,
        kernel_id: str | None = None,
        notebook: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.heartbeat_period = heartbeat_period
        self.kernel_id = kernel_id
        self.notebook = notebook
        self.session_id: int | None = None  # the ledger session now written to
        self.session_ids: list[int] = []  # every ledger session of this meter
        self.session_start = 0.0  # monotonic
        self._pending: deque[_Op] = deque()
        self._retry_at: float | None = None  # monotonic; None while writes succeed
        self._backoff = 0.0
        self._warned = False
        self._dead = ledger is None
        self._pid = os.getpid()  # a forked child must not write its parent's session

    @property
    def label(self) -> str | None:
        """The ledger's path while a session is recorded there, else None."""
        led = self.ledger
        if led is None or led.path is None or self.session_id is None:
            return None
        return str(led.path)

    # what the meter asks for

    def open_session(
        self, now: float, wall: datetime, segments: Sequence[Segment], work: Work
    ) -> None:
        """Start a ledger session at ``now`` with an interval for each open segment."""
        if self._dead or not segments:
            return
        self.session_id = None
        self.session_start = now
        instance = segments[0]
        started_at = wall.timestamp()

        def op(led: Ledger) -> None:
            sid = led.open_session(
                instance=instance.name,
                rate_micro=instance.rate,
                started_at=started_at,
                heartbeat_period=self.heartbeat_period,
                kernel_id=self.kernel_id,
                notebook=self.notebook,
            )
            self.session_id = sid
            self.session_ids.append(sid)

        self._pending.append(op)
        for seg in segments:
            seg.ledger_start, seg.work0, seg.ledger_id = now, work, None
            self._queue_interval(seg, wall)
        self._write_now(now)

    def open_interval(self, seg: Segment, now: float, wall: datetime, work: Work) -> None:
        """Open the ledger interval of a segment that just started."""
        if self._dead:
            return
        seg.ledger_start, seg.work0, seg.ledger_id = now, work, None
        self._queue_interval(seg, wall)
        self._write_now(now)

    def _queue_interval(self, seg: Segment, wall: datetime) -> None:
        offset_us = us(seg.ledger_start - self.session_start)
        started_at = wall.timestamp()

        def op(led: Ledger) -> None:
            if self.session_id is None:
                return
            seg.ledger_id = led.open_interval(
                self.session_id,
                kind=seg.kind,
                name=seg.name,
                rate_micro=seg.rate,
                offset_us=offset_us,
                started_at=started_at,
                precision=seg.precision,
            )

        self._pending.append(op)

    def close_interval(self, seg: Segment, now: float, work: Work, reason: str) -> None:
        """Close a segment's interval with its final duration."""
        if self._dead:
            return
        final = progress(seg, now, work)

        def op(led: Ledger) -> None:
            if seg.ledger_id is not None:
                led.close_interval(seg.ledger_id, final, reason=reason)

        self._pending.append(op)
        self._write_now(now)

    def heartbeat(
        self, now: float, wall: datetime, segments: Sequence[Segment], work: Work
    ) -> None:
        """Store the time so far (after any write still owed); a session another kernel closed
        meanwhile is continued in a new one."""
        if not self.flush(now) or self.session_id is None:
            return
        assert self.ledger is not None
        try:
            ok = self.ledger.heartbeat(
                self.session_id,
                elapsed_us=us(now - self.session_start),
                wall=wall.timestamp(),
                intervals=self._progress(segments, now, work),
                inferences=work.inferences,
                errors=work.errors,
                simulated_s=work.simulated_s,
            )
        except Exception as exc:  # nothing the ledger does may stop the meter
            if _kind(exc) == "drop":  # a heartbeat is not queued: the next one writes it all
                self._warn(_dropped(exc))
            else:
                self._failed(exc, now)
            return
        self._succeeded()
        if not ok:
            # Another kernel judged this one dead and closed its session (e.g. after a long
            # suspend): carry on in a new session from now, the closed one keeps what it had.
            self.open_session(now, wall, segments, work)

    def close_session(
        self, now: float, wall: datetime, segments: Sequence[Segment], work: Work
    ) -> None:
        """Close the session at ``now``: one last attempt at everything owed, back-off or not."""
        if self._dead:
            return
        elapsed_us = us(now - self.session_start)
        finals = [(seg, progress(seg, now, work)) for seg in segments]

        def op(led: Ledger) -> None:
            if self.session_id is None:
                return
            led.close_session(
                self.session_id,
                elapsed_us=elapsed_us,
                wall=wall.timestamp(),
                intervals={s.ledger_id: p for s, p in finals if s.ledger_id is not None},
                inferences=work.inferences,
                errors=work.errors,
                simulated_s=work.simulated_s,
            )

        self._pending.append(op)
        if not self.flush(now, force=True) and self._pending:
            self._pending.clear()
            warnings.warn(
                "ei_widgets ledger: the session could not be closed; the next kernel to open the"
                " ledger closes it at its last heartbeat.",
                LedgerWarning,
                stacklevel=3,
            )

    def _progress(
        self, segments: Sequence[Segment], now: float, work: Work
    ) -> dict[int, IntervalProgress]:
        return {
            seg.ledger_id: progress(seg, now, work) for seg in segments if seg.ledger_id is not None
        }

    # writing, retrying

    def _write_now(self, now: float) -> None:
        """Write what was just queued, unless the ledger is failing: then only the heartbeat
        retries, so an attach or a detach never waits on a locked ledger's busy timeout."""
        if self._retry_at is None:
            self.flush(now)

    def flush(self, now: float, *, force: bool = False) -> bool:
        """Make the writes owed, in order. False while the ledger refuses them (or is gone)."""
        if self._dead or os.getpid() != self._pid:
            return False
        if self._retry_at is not None and now < self._retry_at and not force:
            return False
        assert self.ledger is not None
        while self._pending:
            try:
                self._pending[0](self.ledger)
            except Exception as exc:  # nothing the ledger does may stop the meter
                if _kind(exc) != "drop":
                    self._failed(exc, now)
                    return False
                # It would fail the same way at every retry and hold up every write after it.
                self._warn(_dropped(exc))
            self._pending.popleft()
            self._succeeded()
        return True

    def _succeeded(self) -> None:
        if self._retry_at is not None:
            log.info("ei_widgets ledger: writing again; the time owed has been written")
            self._retry_at, self._backoff = None, 0.0

    def _failed(self, exc: BaseException, now: float) -> None:
        if _kind(exc) == "dead":  # it will never work again
            self._dead = True
            self._pending.clear()
            self.session_id = None
            self._warn(f"ei_widgets ledger write failed ({exc}); metering goes on in memory only.")
            return
        self._backoff = min(MAX_BACKOFF_S, max(self.heartbeat_period, 2 * self._backoff))
        self._retry_at = now + self._backoff
        self._warn(
            f"ei_widgets ledger write failed ({exc}); the time is kept and will be written when"
            " the ledger takes writes again (retrying with back-off)."
        )

    def _warn(self, text: str) -> None:
        if not self._warned:  # once per meter, not once per heartbeat
            self._warned = True
            warnings.warn(text, LedgerWarning, stacklevel=4)
