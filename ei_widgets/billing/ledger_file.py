"""The ledger's file: opening it, checking it is ours, preparing WAL and the schema.

A file is written only once it is known to be a ledger (or empty): somebody else's database or
any other file at the ledger's path is refused and left as it was. A damaged file is moved aside
only when its header carries the ledger's application id, i.e. when it is demonstrably ours.
Reading opens the file read-only and changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import stat
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

try:  # POSIX only: serialises the "move a corrupt file aside" step between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ei_widgets.errors import LedgerError

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT_MS",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "Corrupt",
    "LedgerWarning",
    "check_regular",
    "connect",
    "file_lock",
    "has_endpoint_column",
    "move_aside",
]

ENV_VAR = "EI_WIDGETS_LEDGER"
SCHEMA_VERSION = 2
# 2: sessions.endpoint, the name of the hosted endpoint a session bills (NULL for a kernel's own)
BUSY_TIMEOUT_MS = 10_000
# Written in the header of every ledger ("EIWL"): a file carrying it is demonstrably ours, so a
# damaged one may be moved aside; any other file at the ledger's path is left alone.
APPLICATION_ID = 0x4549574C

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
    simulated_s REAL NOT NULL DEFAULT 0,
    endpoint TEXT                      -- a hosted endpoint's name, NULL for a kernel's session
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


class Corrupt(LedgerError):
    """The file is a damaged ei_widgets ledger (``open_ledger`` moves it aside; readers get it as
    a ``LedgerError``)."""


def header_is_ours(path: Path) -> bool:
    """Does the file's SQLite header carry the ledger's application id? Read without SQLite, so
    it works on a file too damaged to open."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError:
        return False
    return (
        len(header) == 100
        and header.startswith(b"SQLite format 3\x00")
        and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    )


def _damaged(path: Path | None, reason: str) -> LedgerError:
    """A damaged file: to be moved aside only if its header shows it is a ledger of ours."""
    if path is not None and header_is_ours(path):
        return Corrupt(reason)
    return LedgerError(
        f"{path} cannot be read ({reason}) and is not an ei_widgets ledger that could be moved"
        f" aside, so it is left untouched. Point ${ENV_VAR} at another file, or move this one"
        " away."
    )


def _sqlite(target: str, *, uri: bool) -> sqlite3.Connection:
    try:
        return sqlite3.connect(
            target,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger {target}: {exc}") from exc


def connect(path: Path | None, *, read_only: bool = False) -> tuple[sqlite3.Connection, bool]:
    """A connection to the ledger at ``path`` (None: a new one in memory), and whether the file
    has no schema yet (only when ``read_only``: a writable one gets its schema here).

    Raises ``Corrupt`` for a damaged ledger of ours, ``LedgerError`` for anything else unusable
    (a FIFO, a device or a directory at ``path`` is refused from a ``stat``, before it is opened:
    opening a FIFO would block forever).
    """
    if path is not None:
        check_regular(path)
    if read_only and path is not None:
        return _connect_read(path)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger directory {path.parent}: {exc}") from exc
    target = ":memory:" if path is None else str(path)
    conn = _sqlite(target, uri=False)
    try:
        _prepare_retrying(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if _is_corruption(exc):
            raise _damaged(path, str(exc)) from exc
        raise LedgerError(f"cannot use the ledger {target}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn, False


def has_endpoint_column(conn: sqlite3.Connection) -> bool:
    """Does the sessions table have schema 2's ``endpoint`` column? (A schema 1 file opened
    read-only keeps its own columns.)"""
    return any(row[1] == "endpoint" for row in conn.execute("PRAGMA table_info(sessions)"))


def check_regular(path: Path) -> None:
    """Refuse, from a ``stat``, anything at ``path`` that is not a regular file (a missing file
    is fine: it is created, or read as empty). Also a path the system cannot even look up."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise LedgerError(f"cannot use the ledger {str(path)[:200]!r}: {exc}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device"
        raise LedgerError(
            f"the ledger {str(path)!r} is {what}, not a regular file; point ${ENV_VAR} (or"
            " --ledger) at a ledger file"
        )


def _connect_read(path: Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection that creates nothing beside the file.

    Without a ``-wal`` file no kernel has the ledger open and everything is in the main file: it
    is read as immutable, so SQLite makes no ``-wal``/``-shm`` files (and needs no write access
    to the folder). With one, a kernel may be writing: it is read with ``mode=ro`` (its WAL
    included), and only if SQLite cannot use the WAL index there (a read-only folder or mount)
    as immutable, which reads what was checkpointed into the main file.
    """
    uri = path.absolute().as_uri() + "?mode=ro"
    wal = path.with_name(path.name + "-wal")
    attempts = (uri, uri + "&immutable=1") if wal.exists() else (uri + "&immutable=1",)
    for attempt in attempts:
        conn = _sqlite(attempt, uri=True)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            return conn, check_schema(conn, path) == 0
        except sqlite3.OperationalError as exc:
            conn.close()
            if "immutable" in attempt:
                raise LedgerError(f"cannot read the ledger {path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LedgerError(f"cannot read the ledger {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _prepare_retrying(conn: sqlite3.Connection, path: Path | None) -> None:
    """``_prepare``, retried while another process is creating or converting the file.

    Switching a new file to WAL mode can report "database is locked" at once, without waiting
    for the busy timeout, when several kernels open a fresh ledger together.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            _prepare(conn, path)
            return
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if not ("locked" in text or "busy" in text) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.05)  # jitter: openers do not march in step


def _prepare(conn: sqlite3.Connection, path: Path | None) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if path is not None:
        # Read before anything is written, so somebody else's database is left as it was (a
        # file that is no database at all fails here: "file is not a database").
        check_schema(conn, path)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(f"the ledger {path} cannot use WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL, much cheaper
        check = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        if check != ["ok"]:
            raise _damaged(path, "; ".join(str(c) for c in check[:3]))
    conn.execute("BEGIN IMMEDIATE")
    try:
        if check_schema(conn, path) < SCHEMA_VERSION:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if not has_endpoint_column(conn):  # a schema 1 file: the column is added, no rebuild
                conn.execute("ALTER TABLE sessions ADD COLUMN endpoint TEXT")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # also ledgers made before
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def check_schema(conn: sqlite3.Connection, path: Path | None) -> int:
    """The file's schema version, after checking the file is a ledger (or still empty)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    app = int(conn.execute("PRAGMA application_id").fetchone()[0])
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    foreign = tables - {"sessions", "intervals"}
    if app not in (0, APPLICATION_ID) or (version == 0 and foreign):
        what = f"tables: {', '.join(sorted(tables))}" if foreign else f"application id {app}"
        raise LedgerError(
            f"{path} is not an ei_widgets ledger ({what}); it is left untouched. Point"
            f" ${ENV_VAR} at another file."
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {path} was written by a newer ei_widgets (schema {version}, this one"
            f" reads {SCHEMA_VERSION}); it is left untouched"
        )
    return version


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("not a database", "malformed", "corrupt", "encrypted"))


def move_aside(path: Path, reason: str) -> Path:
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
def file_lock(path: Path) -> Iterator[None]:
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
