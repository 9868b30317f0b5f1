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
import csv
import io
import itertools
import os
import random
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

try:  # POSIX only: serialises the "move a corrupt file aside" step between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .errors import LedgerError

__all__ = [
    "ENV_VAR",
    "SCHEMA_VERSION",
    "IntervalProgress",
    "Ledger",
    "LedgerWarning",
    "UsageRow",
    "default_path",
    "dollars",
    "micro_per_hour",
    "open_ledger",
    "usage",
    "usage_csv",
    "write_csv",
]

ENV_VAR = "EI_WIDGETS_LEDGER"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
# A session on another host (where its pid cannot be checked) counts as crashed once its heartbeat
# is this many periods old, and never sooner than MIN_STALE_S.
STALE_PERIODS = 6
MIN_STALE_S = 120.0

US_PER_S = 1_000_000
US_PER_HOUR = 3_600 * US_PER_S
# rate (micro-dollars per hour) x duration (microseconds) = "units"; one dollar is this many units.
UNITS_PER_DOLLAR = US_PER_HOUR * 1_000_000
MICRO = Decimal("0.000001")

By = Literal["day", "accelerator", "notebook"]
NO_ACCELERATOR = "(none)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    kernel_id TEXT,
    notebook TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT,                    -- process start marker, so a reused pid is not "alive"
    instance TEXT NOT NULL,            -- instance type when the session started
    rate_micro INTEGER NOT NULL,       -- its price, micro-dollars per hour
    started_at REAL NOT NULL,          -- wall clock, seconds since the epoch (UTC)
    heartbeat_period REAL NOT NULL,    -- seconds between heartbeats, as promised by the writer
    elapsed_us INTEGER NOT NULL DEFAULT 0,  -- monotonic time since start, at the last heartbeat
    heartbeat_at REAL NOT NULL,        -- wall clock of the last heartbeat
    heartbeats INTEGER NOT NULL DEFAULT 0,
    ended_at REAL,                     -- wall clock when closed, NULL while open
    end_reason TEXT,                   -- 'stop' or 'crash'
    inferences INTEGER NOT NULL DEFAULT 0,  -- run summary of the whole session
    errors INTEGER NOT NULL DEFAULT 0,
    simulated_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at);
CREATE INDEX IF NOT EXISTS sessions_open ON sessions(ended_at);
CREATE TABLE IF NOT EXISTS intervals (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    kind TEXT NOT NULL CHECK (kind IN ('instance', 'accelerator')),
    name TEXT NOT NULL,
    precision TEXT,
    rate_micro INTEGER NOT NULL,
    offset_us INTEGER NOT NULL,        -- monotonic start, relative to the session's start
    duration_us INTEGER NOT NULL DEFAULT 0,  -- as of the last heartbeat, or final once closed
    started_at REAL NOT NULL,          -- wall clock at the event, for people reading the table
    closed INTEGER NOT NULL DEFAULT 0,
    end_reason TEXT,                   -- 'detach', 'change', 'stop' or 'crash'
    inferences INTEGER NOT NULL DEFAULT 0,  -- run summary while this interval was open
    errors INTEGER NOT NULL DEFAULT 0,
    simulated_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS intervals_session ON intervals(session_id);
"""


class LedgerWarning(UserWarning):
    """The ledger file could not be used as is (corrupt, read-only...); metering goes on."""


# --- money and time helpers -------------------------------------------------------------------


def micro_per_hour(price_per_hour: Decimal | int | str) -> int:
    """A price in dollars per hour as integer micro-dollars per hour (half-even rounding)."""
    value = (
        Decimal(str(price_per_hour))
        if not isinstance(price_per_hour, Decimal)
        else (price_per_hour)
    )
    return int((value * 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def dollars(units: int) -> Decimal:
    """Exact cost units (micro-dollars/hour x microseconds) as dollars, to the micro-dollar."""
    return (Decimal(units) / Decimal(UNITS_PER_DOLLAR)).quantize(MICRO, rounding=ROUND_HALF_EVEN)


def _epoch_us(value: datetime | date) -> int:
    """A bound given by the user, as microseconds since the epoch (naive datetimes are UTC)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def _day_start_us(epoch_us: int) -> int:
    day_us = 86_400 * US_PER_S
    return epoch_us - epoch_us % day_us


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


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalProgress:
    """What a heartbeat stores for one open interval."""

    duration_us: int
    inferences: int = 0
    errors: int = 0
    simulated_s: float = 0.0


@dataclass(frozen=True)
class UsageRow:
    """One line of usage history: a day, an accelerator or a notebook."""

    key: str
    sessions: int
    instance_seconds: float
    accelerator_seconds: float
    instance_cost: Decimal
    accelerator_cost: Decimal
    total: Decimal
    inferences: int
    errors: int
    cost_per_million: Decimal | None  # total per million inferences; None without inferences


@dataclass
class _Bucket:
    sessions: set[int]
    instance_us: int = 0
    accelerator_us: int = 0
    instance_units: int = 0
    accelerator_units: int = 0
    inferences: int = 0
    errors: int = 0

    def row(self, key: str) -> UsageRow:
        instance_cost = dollars(self.instance_units)
        accelerator_cost = dollars(self.accelerator_units)
        units = self.instance_units + self.accelerator_units
        per_million = dollars(units * 1_000_000 // self.inferences) if self.inferences > 0 else None
        return UsageRow(
            key=key,
            sessions=len(self.sessions),
            instance_seconds=self.instance_us / US_PER_S,
            accelerator_seconds=self.accelerator_us / US_PER_S,
            instance_cost=instance_cost,
            accelerator_cost=accelerator_cost,
            total=dollars(units),
            inferences=self.inferences,
            errors=self.errors,
            cost_per_million=per_million,
        )


# --- the ledger ---------------------------------------------------------------------------------


def default_path() -> Path:
    """``$EI_WIDGETS_LEDGER`` if set, else ``<jupyter data dir>/ei_widgets/usage.sqlite3``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "ei_widgets" / "usage.sqlite3"


class _Corrupt(LedgerError):
    """The file exists but is not a readable ei_widgets ledger (``open_ledger`` moves it aside;
    readers get it as a ``LedgerError``)."""


class Ledger:
    """A connection to one ledger file (or to an in-memory database).

    Thread-safe: the meter's ticker thread and the kernel's main thread share one connection under
    a lock. Every write is one short ``BEGIN IMMEDIATE`` transaction, so several processes can
    write to one file at once (they wait on each other up to the busy timeout).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, recover: bool = True) -> None:
        """Open (creating if needed) the ledger at ``path``; ``":memory:"`` keeps it in memory.

        Raises ``LedgerError`` when the file cannot be used; :func:`open_ledger` turns that into
        a warning and an in-memory ledger. A corrupt file is moved aside first (see
        :func:`open_ledger`); this constructor only refuses it.
        """
        self.in_memory = path is not None and str(path) == ":memory:"
        self.path: Path | None = None if self.in_memory else Path(path or default_path())
        self._lock = threading.RLock()
        self._mine: set[int] = set()  # sessions this object opened: alive by definition
        self._conn = self._connect()
        self.recovered: list[int] = self.recover() if recover else []

    # connection and schema

    def _connect(self) -> sqlite3.Connection:
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot create the ledger directory {self.path.parent}: {exc}"
                ) from exc
        target = ":memory:" if self.path is None else str(self.path)
        try:
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {target}: {exc}") from exc
        try:
            self._prepare_retrying(conn)
        except _Corrupt:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_corruption(exc):
                raise _Corrupt(str(exc)) from exc
            raise LedgerError(f"cannot use the ledger {target}: {exc}") from exc
        return conn

    def _prepare_retrying(self, conn: sqlite3.Connection) -> None:
        """``_prepare``, retried while another process is creating or converting the file.

        Switching a new file to WAL mode can report "database is locked" at once, without
        waiting for the busy timeout, when several kernels open a fresh ledger together.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._prepare(conn)
                return
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if not ("locked" in text or "busy" in text) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02 + random.random() * 0.05)  # jitter: openers do not march in step

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.path is not None:
            # The first read of the header: a non-database file fails here ("not a database").
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"the ledger {self.path} cannot use WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL, much cheaper
            check = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            if check != ["ok"]:
                raise _Corrupt("; ".join(str(c) for c in check[:3]))
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if version == 0 and tables - {"sessions", "intervals"}:
                raise _Corrupt(f"not an ei_widgets ledger (tables: {', '.join(sorted(tables))})")
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.path} was written by a newer ei_widgets (schema {version},"
                    f" this one reads {SCHEMA_VERSION}); it is left untouched"
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with the write lock from the start."""
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
        """Close the connection (idempotent)."""
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
    ) -> int:
        """Start a session row; returns its id. ``started_at`` is wall-clock epoch seconds."""
        pid = os.getpid() if pid is None else pid
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (kernel_id, notebook, host, pid, pid_start, instance,"
                " rate_micro, started_at, heartbeat_period, heartbeat_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kernel_id,
                    notebook,
                    socket.gethostname(),
                    pid,
                    _process_start(pid),
                    instance,
                    rate_micro,
                    started_at,
                    heartbeat_period,
                    started_at,
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
                (session_id, kind, name, precision, rate_micro, offset_us, started_at),
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
                conn.execute(
                    "UPDATE intervals SET duration_us = MAX(duration_us, ?), inferences = ?,"
                    " errors = ?, simulated_s = ? WHERE id = ? AND closed = 0",
                    (p.duration_us, p.inferences, p.errors, p.simulated_s, interval_id),
                )
            return True

    def close_interval(
        self, interval_id: int, progress: IntervalProgress, *, reason: str = "detach"
    ) -> bool:
        """Close one interval with its final duration. False if it was already closed."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE intervals SET duration_us = MAX(duration_us, ?), inferences = ?,"
                " errors = ?, simulated_s = ?, closed = 1, end_reason = ?"
                " WHERE id = ? AND closed = 0",
                (
                    progress.duration_us,
                    progress.inferences,
                    progress.errors,
                    progress.simulated_s,
                    reason,
                    interval_id,
                ),
            )
            return cur.rowcount == 1

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
                conn.execute(
                    "UPDATE intervals SET duration_us = MAX(duration_us, ?), inferences = ?,"
                    " errors = ?, simulated_s = ?, closed = 1, end_reason = ?"
                    " WHERE id = ? AND closed = 0",
                    (p.duration_us, p.inferences, p.errors, p.simulated_s, reason, interval_id),
                )
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
        host = socket.gethostname()
        closed: list[int] = []
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, host, pid, pid_start, heartbeat_at, heartbeat_period FROM sessions"
                " WHERE ended_at IS NULL"
            ).fetchall()
            for sid, s_host, pid, pid_start, heartbeat_at, period in rows:
                if sid in self._mine:
                    continue
                if s_host == host:
                    dead = not _pid_alive(int(pid), pid_start)
                else:
                    dead = now - heartbeat_at > max(STALE_PERIODS * period, MIN_STALE_S)
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
        buckets = self._buckets(since, until, lambda piece: "all", exclude)
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

        Inferences and errors of an accelerator interval count where the interval ends (its last
        heartbeat), when that end lies within the bounds.
        """
        if by not in ("day", "accelerator", "notebook"):
            raise LedgerError(
                f"usage(by=...) must be 'day', 'accelerator' or 'notebook', not {by!r}"
            )
        key_of: dict[str, Callable[[_Piece], str]] = {
            "day": lambda p: (
                datetime.fromtimestamp(p.start_us // US_PER_S, timezone.utc).date().isoformat()
            ),
            "accelerator": lambda p: p.accelerator or NO_ACCELERATOR,
            "notebook": lambda p: p.notebook,
        }
        buckets = self._buckets(since, until, key_of[by], split_days=by == "day")
        return [buckets[k].row(k) for k in sorted(buckets)]

    def _buckets(
        self,
        since: datetime | date | None,
        until: datetime | date | None,
        key_of: Callable[[_Piece], str],
        exclude: Iterable[int] = (),
        *,
        split_days: bool = False,
    ) -> dict[str, _Bucket]:
        lo = None if since is None else _epoch_us(since)
        hi = None if until is None else _epoch_us(until)
        if lo is not None and hi is not None and hi <= lo:
            return {}
        where = "1"
        args: list[object] = []
        if hi is not None:
            where += " AND started_at < ?"
            args.append(hi / US_PER_S)
        if lo is not None:  # a session that ended before the lower bound cannot contribute
            where += " AND started_at + elapsed_us / 1e6 >= ?"
            args.append(lo / US_PER_S - 1)
        for sid in exclude:
            where += " AND id != ?"
            args.append(sid)
        with self._lock:
            sessions = self._conn.execute(
                f"SELECT id, kernel_id, notebook, started_at FROM sessions WHERE {where}", args
            ).fetchall()
            rows = self._conn.execute(
                "SELECT session_id, kind, name, rate_micro, offset_us, duration_us, inferences,"
                " errors FROM intervals"
                f" WHERE session_id IN (SELECT id FROM sessions WHERE {where})"
                " ORDER BY session_id, offset_us, id",
                args,
            ).fetchall()
        by_session: dict[int, list[_Span]] = {}
        for sid_, kind, name, rate, offset, duration, inferences, errors in rows:
            by_session.setdefault(int(sid_), []).append(
                _Span(
                    str(kind),
                    str(name),
                    int(rate),
                    int(offset),
                    int(offset) + int(duration),
                    int(inferences),
                    int(errors),
                )
            )
        buckets: dict[str, _Bucket] = {}
        for sid, kernel_id, notebook, started_at in sessions:
            anchor = round(float(started_at) * US_PER_S)
            label = str(notebook or kernel_id or f"session {sid}")
            spans = by_session.get(int(sid), [])
            for piece in _pieces(anchor, spans, label):
                for part in _clip(piece, lo, hi, split_days):
                    b = buckets.setdefault(key_of(part), _Bucket(sessions=set()))
                    b.sessions.add(int(sid))
                    dur = part.end_us - part.start_us
                    if part.instance_rate is not None:
                        b.instance_us += dur
                        b.instance_units += part.instance_rate * dur
                    if part.accelerator_rate is not None:
                        b.accelerator_us += dur
                        b.accelerator_units += part.accelerator_rate * dur
            # Work counts where its interval ends (the last heartbeat that reported it).
            for span in spans:
                if span.kind != "accelerator" or not (span.inferences or span.errors):
                    continue
                end = anchor + span.end
                if (lo is not None and end < lo) or (hi is not None and end >= hi):
                    continue
                point = _Piece(end, end, None, None, span.name, label)
                b = buckets.setdefault(key_of(point), _Bucket(sessions=set()))
                b.sessions.add(int(sid))
                b.inferences += span.inferences
                b.errors += span.errors
        return buckets


@dataclass(frozen=True)
class _Piece:
    """A stretch of one session during which nothing changed (same instance, same accelerator)."""

    start_us: int  # wall-clock epoch microseconds (session start + monotonic offset)
    end_us: int
    instance_rate: int | None
    accelerator_rate: int | None
    accelerator: str | None
    notebook: str


class _Span(NamedTuple):
    """One interval row, on its session's monotonic timeline (microseconds from the start)."""

    kind: str
    name: str
    rate: int
    start: int
    end: int
    inferences: int
    errors: int


def _pieces(anchor: int, spans: Sequence[_Span], notebook: str) -> Iterator[_Piece]:
    """Cut a session into stretches with one instance rate and at most one accelerator.

    A sweep over the interval ends: linear in the number of intervals (after sorting), so a
    session with thousands of attach/detach cycles stays cheap to read.
    """
    starts: dict[int, list[_Span]] = {}
    ends: dict[int, list[_Span]] = {}
    for span in spans:
        if span.end > span.start:
            starts.setdefault(span.start, []).append(span)
            ends.setdefault(span.end, []).append(span)
    cuts = sorted(starts.keys() | ends.keys())
    active: dict[str, list[_Span]] = {"instance": [], "accelerator": []}
    for a, b in itertools.pairwise(cuts):
        for span in ends.get(a, ()):
            active[span.kind].remove(span)
        for span in starts.get(a, ()):
            active[span.kind].append(span)
        inst = active["instance"][-1] if active["instance"] else None
        acc = active["accelerator"][-1] if active["accelerator"] else None
        if inst is None and acc is None:
            continue
        yield _Piece(
            anchor + a,
            anchor + b,
            inst.rate if inst else None,
            acc.rate if acc else None,
            acc.name if acc else None,
            notebook,
        )


def _clip(piece: _Piece, lo: int | None, hi: int | None, split_days: bool) -> Iterator[_Piece]:
    start = piece.start_us if lo is None else max(piece.start_us, lo)
    end = piece.end_us if hi is None else min(piece.end_us, hi)
    while start < end:
        stop = min(end, _day_start_us(start) + 86_400 * US_PER_S) if split_days else end
        yield _Piece(
            start,
            stop,
            piece.instance_rate,
            piece.accelerator_rate,
            piece.accelerator,
            piece.notebook,
        )
        start = stop


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("not a database", "malformed", "corrupt", "encrypted"))


# --- opening with fallbacks ---------------------------------------------------------------------


def _move_aside(path: Path, reason: str) -> Path:
    """Rename a corrupt ledger (and its -wal/-shm) to ``<name>.corrupt-<UTC timestamp>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            with contextlib.suppress(OSError):
                os.replace(side, target.with_name(target.name + suffix))
    warnings.warn(
        f"ei_widgets ledger {path} is unreadable ({reason}); it was moved to {target} and a new"
        " ledger was started. Nothing was deleted.",
        LedgerWarning,
        stacklevel=3,
    )
    return target


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An advisory lock beside the ledger, so two kernels never both move files aside."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def open_ledger(path: str | os.PathLike[str] | None = None, *, recover: bool = True) -> Ledger:
    """Open the ledger for metering, never failing: the fallbacks warn (``LedgerWarning``).

    - corrupt file: moved aside to ``<name>.corrupt-<timestamp>``, a fresh ledger is started;
    - unusable place (read-only directory, a path through a regular file, a newer schema...):
      an in-memory ledger is returned, so metering goes on for this kernel.
    """
    target = Path(path) if path is not None else default_path()
    if str(path) == ":memory:":
        return Ledger(":memory:", recover=False)
    try:
        try:
            return Ledger(target, recover=recover)
        except _Corrupt:
            with _file_lock(target):
                try:  # another kernel may have replaced it meanwhile
                    return Ledger(target, recover=recover)
                except _Corrupt as exc:
                    _move_aside(target, str(exc))
            return Ledger(target, recover=recover)
    except (LedgerError, OSError, sqlite3.Error) as exc:
        warnings.warn(
            f"ei_widgets ledger unavailable ({exc}); metering goes on in memory for this kernel"
            " and will not be kept after it ends.",
            LedgerWarning,
            stacklevel=2,
        )
        return Ledger(":memory:", recover=False)


def _ledger_for(path: str | os.PathLike[str] | None) -> tuple[Ledger, bool]:
    """The ledger to read: the running meter's if no path is given, else the file at ``path``."""
    if path is None:
        from . import billing

        running = billing.meter()
        if running is not None and running.ledger is not None:
            return running.ledger, False
    target = Path(path) if path is not None else default_path()
    if not target.exists():
        return Ledger(":memory:", recover=False), True
    return Ledger(target, recover=False), True


def usage(
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    by: By = "day",
    path: str | os.PathLike[str] | None = None,
) -> list[UsageRow]:
    """Usage history as rows (see :meth:`Ledger.usage`).

    Without ``path`` it reads the ledger of this kernel's running meter, else the default file.
    """
    ledger, owned = _ledger_for(path)
    try:
        return ledger.usage(since, until, by)
    finally:
        if owned:
            ledger.close()


def write_csv(rows: Iterable[UsageRow], file: IO[str]) -> None:
    """Write usage rows as CSV with a header line; money as exact decimal strings."""
    names = [f.name for f in fields(UsageRow)]
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if getattr(row, n) is None else str(getattr(row, n)) for n in names])


def usage_csv(
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    by: By = "day",
    path: str | os.PathLike[str] | None = None,
) -> str:
    """:func:`usage` as CSV text."""
    buf = io.StringIO()
    write_csv(usage(since, until, by, path), buf)
    return buf.getvalue()


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s month, in UTC."""
    now = now.astimezone(timezone.utc)
    return datetime(now.year, now.month, 1, tzinfo=timezone.utc)
