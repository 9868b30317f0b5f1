"""The SQLite usage ledger: instance sessions, attach/detach intervals, heartbeats, run summaries.

One file, shared by every kernel of the user (WAL mode, a busy timeout, short transactions). Each
metered kernel owns one *session* row and a set of *interval* rows (``instance`` for the notebook
instance type, ``accelerator`` for each attach ... detach). While a kernel runs, its meter writes a
heartbeat every few seconds that stores how long each open interval has lasted so far, measured on
the kernel's monotonic clock. Money is derived from those durations and the rate stored with each
interval, so:

- a wall-clock change cannot create or erase cost (durations never come from wall time; an
  interval's date is its session's wall-clock start plus its monotonic offset);
- a crashed kernel loses at most the time since its last heartbeat, and closing its intervals
  later only marks them closed ("closed at the last heartbeat"): it adds no time, so nothing is
  ever counted twice, however many kernels run the recovery at once.

Rates are integer micro-dollars per hour and durations integer microseconds; sums are exact
integers, turned into ``Decimal`` dollars only when read.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from jupyter_core.paths import jupyter_data_dir

from ei_widgets.billing import ledger_file
from ei_widgets.billing import ledger_history as history
from ei_widgets.billing.ledger_file import (
    APPLICATION_ID,
    ENV_VAR,
    SCHEMA_VERSION,
    Corrupt,
    LedgerWarning,
    file_lock,
    move_aside,
)
from ei_widgets.billing.ledger_history import By, UsageRow
from ei_widgets.common.money import US_PER_S, dollars
from ei_widgets.errors import LedgerError

__all__ = [
    "APPLICATION_ID",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "IntervalProgress",
    "Ledger",
    "LedgerWarning",
    "UsageRow",
    "default_path",
    "open_ledger",
]

# A session on another host (where its pid cannot be checked) counts as crashed once its heartbeat
# is this many periods old, and never sooner than MIN_STALE_S.
STALE_PERIODS = 6
MIN_STALE_S = 120.0

# --- processes ----------------------------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), used to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = stat[stat.rfind(")") + 2 :].split()
    return rest[19] if len(rest) > 19 else None


def _pid_alive(pid: int, start_marker: str | None) -> bool:
    """Is this process (on this host) still running? Zombies and reused pids count as dead."""
    proc = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            stat = proc.read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        state = stat[stat.rfind(")") + 2 :].split()[:1]
        if state and state[0] in ("Z", "X"):
            return False
        return start_marker is None or _process_start(pid) == start_marker
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover - platform specific
        return False
    return True


def _close_dead(conn: sqlite3.Connection, mine: set[int], now: float) -> list[int]:
    """Close the open sessions (other than ``mine``) whose process is dead, at their last
    heartbeat; returns their ids. Runs inside the caller's write transaction.

    A row that cannot be read (a pid or heartbeat stored as text, say) is left as it is and
    reported with one ``LedgerWarning``: one damaged row must not stop every later kernel."""
    host = socket.gethostname()
    closed: list[int] = []
    damaged: list[str] = []
    rows = conn.execute(
        "SELECT id, host, pid, pid_start, heartbeat_at, heartbeat_period FROM sessions"
        " WHERE ended_at IS NULL"
    ).fetchall()
    for sid, s_host, pid, pid_start, heartbeat_at, period in rows:
        if sid in mine:
            continue
        try:
            if s_host == host:
                if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
                    raise ValueError(f"pid {pid!r}")
                marker = pid_start if pid_start is None else str(pid_start)
                dead = not _pid_alive(pid, marker)
            else:
                if not all(_finite(v) for v in (heartbeat_at, period)):
                    raise ValueError(f"heartbeat {heartbeat_at!r} every {period!r} s")
                dead = now - heartbeat_at > max(STALE_PERIODS * period, MIN_STALE_S)
        except (ValueError, TypeError, OverflowError) as exc:
            damaged.append(f"session {sid!r} ({exc})")
            continue
        if not dead:
            continue
        conn.execute(
            "UPDATE sessions SET ended_at = heartbeat_at, end_reason = 'crash'"
            " WHERE id = ? AND ended_at IS NULL",
            (sid,),
        )
        conn.execute(
            "UPDATE intervals SET closed = 1, end_reason = 'crash'"
            " WHERE session_id = ? AND closed = 0",
            (sid,),
        )
        closed.append(int(sid))
    if damaged:
        warnings.warn(
            f"ei_widgets ledger: {len(damaged)} open session row(s) cannot be read and were left"
            f" as they are: {'; '.join(damaged[:3])}.",
            LedgerWarning,
            stacklevel=4,
        )
    return closed


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


MAX_TEXT = 1024
"""Names stored in the ledger (notebook, kernel id, instance, accelerator) are cut to this."""


def safe_text(value: str | None) -> str | None:
    """``value`` as text SQLite can store: a name that is not valid UTF-8 (a notebook name in
    Latin-1 arrives with surrogate escapes) keeps its undecodable bytes as ``\\xNN`` escapes,
    and a very long one is cut to ``MAX_TEXT`` characters."""
    if value is None:
        return None
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape") if _escapes_only(text) else None
        text = (
            raw.decode("utf-8", "backslashreplace")
            if raw is not None
            else text.encode("utf-8", "backslashreplace").decode("utf-8")
        )
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _escapes_only(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalProgress:
    """What a heartbeat stores for one open interval."""

    duration_us: int
    inferences: int = 0
    errors: int = 0
    simulated_s: float = 0.0


def _store_interval(
    conn: sqlite3.Connection,
    interval_id: int,
    progress: IntervalProgress,
    close_reason: str | None = None,
) -> bool:
    """Store an open interval's progress (its duration never goes back) and, given
    ``close_reason``, close it. False when the interval was already closed."""
    cur = conn.execute(
        "UPDATE intervals SET duration_us = MAX(duration_us, ?), inferences = ?, errors = ?,"
        " simulated_s = ?, closed = ?, end_reason = COALESCE(?, end_reason)"
        " WHERE id = ? AND closed = 0",
        (
            progress.duration_us,
            progress.inferences,
            progress.errors,
            progress.simulated_s,
            int(close_reason is not None),
            close_reason,
            interval_id,
        ),
    )
    return cur.rowcount == 1


# --- the ledger ---------------------------------------------------------------------------------


def default_path() -> Path:
    """``$EI_WIDGETS_LEDGER`` if set, else ``<jupyter data dir>/ei_widgets/usage.sqlite3``.

    ``LedgerError`` when the variable names a path that cannot be used (``~nosuchuser/...``)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return checked_path(env, f"${ENV_VAR}")
    return Path(jupyter_data_dir()) / "ei_widgets" / "usage.sqlite3"


MAX_PATH_LENGTH = 4096


def checked_path(value: object, what: str = "the ledger path") -> Path:
    """A ledger path given by the user, or ``LedgerError`` saying what is wrong with it."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise LedgerError(f"{what} must be a file path (str or Path), not {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise LedgerError(f"{what} is empty: give a ledger file path")
    if len(text) > MAX_PATH_LENGTH or "\0" in text:
        raise LedgerError(f"{what} is not a usable path ({len(text):,} characters: {text[:60]!r})")
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # "~nosuchuser/...": no such home directory
        raise LedgerError(f"{what} {text[:200]!r} cannot be used: {exc}") from None


class Ledger:
    """A connection to one ledger file (or to an in-memory database).

    Thread-safe: the meter's ticker thread and the kernel's main thread share one connection under
    a lock. Every write is one short ``BEGIN IMMEDIATE`` transaction, so several processes can
    write to one file at once (they wait on each other up to the busy timeout). With
    ``read_only`` the file is opened read-only and nothing in it is changed, not even a schema
    written into an empty file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        recover: bool = True,
        read_only: bool = False,
    ) -> None:
        """Open (creating if needed) the ledger at ``path``; ``":memory:"`` keeps it in memory.

        Raises ``LedgerError`` when the file cannot be used; :func:`open_ledger` turns that into
        a warning and an in-memory ledger. A damaged ledger is moved aside first (see
        :func:`open_ledger`); this constructor only refuses it.
        """
        self.in_memory = path is not None and str(path) == ":memory:"
        self.path: Path | None = None
        if not self.in_memory:
            self.path = checked_path(path) if path is not None else default_path()
        self.read_only = read_only and self.path is not None
        self._pid = os.getpid()  # a forked child must not use its parent's connection
        self._lock = threading.RLock()
        self._mine: set[int] = set()  # sessions this object opened: alive by definition
        self._conn, self._empty = ledger_file.connect(self.path, read_only=self.read_only)
        self.recovered: list[int] = self.recover() if recover and not self.read_only else []

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with the write lock from the start."""
        if self.read_only:
            raise LedgerError(f"the ledger {self.path} was opened for reading only")
        if os.getpid() != self._pid:
            raise LedgerError("a forked process cannot write through its parent's ledger")
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (idempotent). A forked child leaves its parent's alone."""
        if os.getpid() != self._pid:
            return
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        return f"Ledger({where!r})"

    # writers (the meter calls these)

    def open_session(
        self,
        *,
        instance: str,
        rate_micro: int,
        started_at: float,
        heartbeat_period: float,
        kernel_id: str | None = None,
        notebook: str | None = None,
        pid: int | None = None,
        endpoint: str | None = None,
    ) -> int:
        """Start a session row; returns its id. ``started_at`` is wall-clock epoch seconds.
        ``endpoint``: the session bills that hosted endpoint (owned by process ``pid``), not a
        kernel's notebook instance."""
        pid = os.getpid() if pid is None else pid
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (kernel_id, notebook, host, pid, pid_start, instance,"
                " rate_micro, started_at, heartbeat_period, heartbeat_at, endpoint)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    safe_text(kernel_id),
                    safe_text(notebook),
                    safe_text(socket.gethostname()),
                    pid,
                    _process_start(pid),
                    safe_text(instance),
                    rate_micro,
                    started_at,
                    heartbeat_period,
                    started_at,
                    safe_text(endpoint),
                ),
            )
            sid = int(cur.lastrowid or 0)
        self._mine.add(sid)
        return sid

    def open_interval(
        self,
        session_id: int,
        *,
        kind: Literal["instance", "accelerator"],
        name: str,
        rate_micro: int,
        offset_us: int,
        started_at: float,
        precision: str | None = None,
    ) -> int:
        """Start an interval of a session at ``offset_us`` (monotonic, from the session start)."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO intervals (session_id, kind, name, precision, rate_micro, offset_us,"
                " started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    kind,
                    safe_text(name),
                    safe_text(precision),
                    rate_micro,
                    offset_us,
                    started_at,
                ),
            )
            return int(cur.lastrowid or 0)

    def heartbeat(
        self,
        session_id: int,
        *,
        elapsed_us: int,
        wall: float,
        intervals: Mapping[int, IntervalProgress],
        inferences: int = 0,
        errors: int = 0,
        simulated_s: float = 0.0,
    ) -> bool:
        """Store progress of a live session and its open intervals, in one transaction.

        Returns False (and writes nothing) when the session is no longer open, i.e. another
        process judged it crashed and closed it: the caller should start a new session.
        """
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE sessions SET elapsed_us = MAX(elapsed_us, ?), heartbeat_at = ?,"
                " heartbeats = heartbeats + 1, inferences = ?, errors = ?, simulated_s = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (elapsed_us, wall, inferences, errors, simulated_s, session_id),
            )
            if cur.rowcount == 0:
                return False
            for interval_id, p in intervals.items():
                _store_interval(conn, interval_id, p)
            return True

    def close_interval(
        self, interval_id: int, progress: IntervalProgress, *, reason: str = "detach"
    ) -> bool:
        """Close one interval with its final duration. False if it was already closed."""
        with self._write() as conn:
            return _store_interval(conn, interval_id, progress, close_reason=reason)

    def close_session(
        self,
        session_id: int,
        *,
        elapsed_us: int,
        wall: float,
        intervals: Mapping[int, IntervalProgress] | None = None,
        inferences: int = 0,
        errors: int = 0,
        simulated_s: float = 0.0,
        reason: str = "stop",
    ) -> bool:
        """Close a session and its open intervals (final durations). False if already closed."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE sessions SET elapsed_us = MAX(elapsed_us, ?), heartbeat_at = ?,"
                " ended_at = ?, end_reason = ?, inferences = ?, errors = ?, simulated_s = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (elapsed_us, wall, wall, reason, inferences, errors, simulated_s, session_id),
            )
            if cur.rowcount == 0:
                return False
            for interval_id, p in (intervals or {}).items():
                _store_interval(conn, interval_id, p, close_reason=reason)
            # Anything the caller did not list keeps its last heartbeat's duration.
            conn.execute(
                "UPDATE intervals SET closed = 1, end_reason = ? WHERE session_id = ?"
                " AND closed = 0",
                (reason, session_id),
            )
            return True

    def recover(self, *, now: float | None = None) -> list[int]:
        """Close sessions left open by processes that died; returns their ids.

        A session is dead when, on this host, its pid is gone (or is a zombie, or was reused), or,
        for another host, when its heartbeat is stale. Its open intervals are closed at their
        last heartbeat: their stored durations are kept as they are, so closing adds nothing and
        a second recovery (from another kernel at the same moment) finds nothing left to close.
        """
        now = time.time() if now is None else now
        with self._write() as conn:
            closed = _close_dead(conn, self._mine, now)
        if closed:
            warnings.warn(
                f"ei_widgets ledger: closed {len(closed)} session(s) left open by a kernel that"
                " ended without stopping its meter; their time was counted up to their last"
                " heartbeat.",
                LedgerWarning,
                stacklevel=2,
            )
        return closed

    # readers

    def sessions(self) -> list[dict[str, Any]]:
        """Every session row, as dicts (oldest first)."""
        return self._dicts("SELECT * FROM sessions ORDER BY id")

    def intervals(self, session_id: int | None = None) -> list[dict[str, Any]]:
        """Every interval row (of one session if given), as dicts."""
        if session_id is None:
            return self._dicts("SELECT * FROM intervals ORDER BY id")
        return self._dicts("SELECT * FROM intervals WHERE session_id = ? ORDER BY id", session_id)

    def _dicts(self, sql: str, *args: object) -> list[dict[str, Any]]:
        if self._empty:
            return []
        with self._lock:
            cur = self._conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def total_units(
        self,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        *,
        exclude: Iterable[int] = (),
    ) -> int:
        """Exact cost units of everything recorded in [since, until), some sessions left out."""
        buckets = _read_buckets(self, since, until, lambda piece: "all", exclude)
        b = buckets.get("all")
        return 0 if b is None else b.instance_units + b.accelerator_units

    def total(
        self,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        *,
        exclude: Iterable[int] = (),
    ) -> Decimal:
        """Dollars recorded in [since, until) (clipped), leaving out the sessions in ``exclude``."""
        return dollars(self.total_units(since, until, exclude=exclude))

    def usage(
        self,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        by: By = "day",
    ) -> list[UsageRow]:
        """History grouped by UTC day, accelerator or notebook; intervals clipped to the bounds.

        - ``day``: rows keyed ``YYYY-MM-DD`` (UTC); an interval crossing midnight is split.
        - ``accelerator``: rows keyed by the accelerator attached at the time, instance time
          included (``"(none)"`` for time with nothing attached).
        - ``notebook``: rows keyed by notebook name (kernel id, or ``session <id>`` without one).
        - ``endpoint``: rows keyed by hosted endpoint name (``"(notebook)"`` for kernels' own
          time).

        Inferences and errors of an accelerator interval count where the interval ends (its last
        heartbeat), when that end lies within the bounds. Each row's parts add up to its total.
        """
        key_of = history.key_function(by)
        buckets = _read_buckets(self, since, until, key_of, split_days=by == "day")
        return [buckets[k].row(k) for k in sorted(buckets)]


def _read_buckets(
    ledger: Ledger,
    since: datetime | date | None,
    until: datetime | date | None,
    key_of: Callable[[history.Piece], str],
    exclude: Iterable[int] = (),
    *,
    split_days: bool = False,
) -> dict[str, history.Bucket]:
    lo = None if since is None else history.epoch_us(since)
    hi = None if until is None else history.epoch_us(until)
    if (lo is not None and hi is not None and hi <= lo) or ledger._empty:
        return {}
    where = "1"
    args: list[object] = []
    if hi is not None:
        where += " AND started_at < ?"
        args.append(hi / US_PER_S)
    if lo is not None:
        # A session whose every interval ended before the lower bound cannot contribute. Its
        # end is its last interval's, not its last heartbeat's: a detach after the heartbeat
        # closes an interval later than the session's elapsed time says.
        where += (
            " AND started_at + MAX(elapsed_us, (SELECT COALESCE(MAX(offset_us + duration_us),"
            " 0) FROM intervals WHERE session_id = sessions.id)) / 1e6 >= ?"
        )
        args.append(lo / US_PER_S - 1)
    for sid in exclude:
        where += " AND id != ?"
        args.append(sid)
    try:
        with ledger._lock:
            # a schema 1 file read as it is has no endpoint column: none of its sessions is one
            endpoint = "endpoint" if ledger_file.has_endpoint_column(ledger._conn) else "NULL"
            sessions = ledger._conn.execute(
                f"SELECT id, kernel_id, notebook, started_at, {endpoint} FROM sessions"
                f" WHERE {where}",
                args,
            ).fetchall()
            rows = ledger._conn.execute(
                "SELECT session_id, kind, name, rate_micro, offset_us, duration_us, inferences,"
                " errors FROM intervals"
                f" WHERE session_id IN (SELECT id FROM sessions WHERE {where})"
                " ORDER BY session_id, offset_us, id",
                args,
            ).fetchall()
    except (sqlite3.Error, OverflowError) as exc:  # a dropped table, a damaged file...
        where_ = ledger.path if ledger.path is not None else ":memory:"
        raise LedgerError(f"cannot read the ledger {where_}: {exc}") from None
    return history.group(sessions, rows, lo, hi, key_of, split_days)


def open_ledger(path: str | os.PathLike[str] | None = None, *, recover: bool = True) -> Ledger:
    """Open the ledger for metering, never failing: the fallbacks warn (``LedgerWarning``).

    - a damaged ledger (its header shows it is ours): moved aside to
      ``<name>.corrupt-<timestamp>``, a fresh ledger is started;
    - anything else unusable (somebody else's file or database, a read-only directory, a path
      through a regular file, a newer schema...): left as it is, and an in-memory ledger is
      returned, so metering goes on for this kernel.
    """
    if path is not None and str(path) == ":memory:":
        return Ledger(":memory:", recover=False)
    try:
        target = checked_path(path) if path is not None else default_path()
        try:
            return Ledger(target, recover=recover)
        except Corrupt:
            with file_lock(target):
                try:  # another kernel may have replaced it meanwhile
                    return Ledger(target, recover=recover)
                except Corrupt as exc:
                    move_aside(target, str(exc))
            return Ledger(target, recover=recover)
    except (LedgerError, OSError, sqlite3.Error) as exc:
        warnings.warn(
            f"ei_widgets ledger unavailable ({exc}); metering goes on in memory for this kernel"
            " and will not be kept after it ends.",
            LedgerWarning,
            stacklevel=2,
        )
        return Ledger(":memory:", recover=False)
