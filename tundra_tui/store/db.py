"""Opening the town database with the discipline that makes kill -9 safe.

Every connection sets `busy_timeout` before anything else, runs in WAL with
`synchronous=NORMAL`, and writes only inside `BEGIN IMMEDIATE`, so a writer
either waits its turn or fails cleanly instead of deadlocking on a lock upgrade.
The file is created 0600 before SQLite opens it, so its WAL and SHM inherit
that mode (research P9); a looser one left from before is tightened.

A file with damaged pages is refused before anything is written to it: SQLite
would otherwise write beside the damage and spread it. `PRAGMA quick_check` reads
every page (about 0.4 s for a 100k-bead town), too slow for every `at` call, so the
file's identity after a clean check is kept beside it and the check runs again only
when the file has changed since (its size, mtime or ctime moved). A running daemon
changes the file all the time, so `check_on_write` (the CLI's and the TUI's) moves the
check from the open to just before the process's first write: a reader cannot spread
damage, and `at cost` on a year of usage no longer reads every page first (on a 250 MB
file the check was 0.8-1.0 s of `at cost`'s 1.2-1.8 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from tundra_tui.domain.clock import Clock, iso, system_clock
from tundra_tui.domain.errors import TundraError
from tundra_tui.store.schema import MIGRATIONS, SCHEMA_VERSION


class StoreError(TundraError):
    """The database could not be used; the message says which file and why."""


class StoreLocked(StoreError):
    """Another writer held the database longer than the busy timeout."""


class FutureSchema(StoreError):
    """The database was written by a newer auto-tundra."""


class DamagedDatabase(StoreError):
    """`PRAGMA quick_check` found damaged pages: nothing may be written to the file."""


CHECKED_SUFFIX = ".checked"
"""Beside the database: the file's identity when quick_check last said ok."""
_MAX_PROBLEM = 160
"""Characters of quick_check's first complaint kept in the one-line message."""


def _translate(error: sqlite3.Error, path: Path, busy_timeout_ms: int) -> StoreError:
    """Turn SQLite's exceptions into one-line messages that name the file."""
    text = str(error)
    if "locked" in text or "busy" in text:
        return StoreLocked(
            f"database is locked by another writer (waited {busy_timeout_ms / 1000:.1f} s): "
            f"{path}; nothing was written"
        )
    if "full" in text:
        return StoreError(f"disk is full, nothing was written: {path}")
    if "constraint failed" in text:
        return StoreError(f"refused by the database ({text}); nothing was written")
    if "malformed" in text:
        return DamagedDatabase(_damaged(path, text))
    if "not a database" in text:
        return StoreError(f"{path} is not a usable auto-tundra database ({text})")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(f"cannot write {path}: {text}")
    return StoreError(f"database error in {path}: {text}")


def create_private_file(path: Path) -> None:
    """Create `path` as an empty 0600 file unless a regular file is already there.

    The mode is set with fchmod as well: `os.open` only asks, and the umask decides.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        if path.is_symlink():
            raise StoreError(f"refusing to open {path}: it is a symbolic link") from None
        return
    except OSError as error:
        raise StoreError(f"cannot create {path}: {error.strerror}") from error
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _tighten(path: Path) -> None:
    """Make the database and its -wal and -shm 0600 if an older version left them looser.

    Only files we own: anyone else's we cannot chmod, and SQLite reports them anyway.
    """
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.lstat()
            if (
                stat.S_ISREG(info.st_mode)
                and info.st_uid == os.geteuid()
                and stat.S_IMODE(info.st_mode) & 0o177
            ):
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise StoreError(f"cannot make {file} private: {error.strerror}") from error


def _damaged(path: Path, problem: str) -> str:
    """The one line that refuses a damaged file and says how to get the data back."""
    if len(problem) > _MAX_PROBLEM:
        problem = problem[: _MAX_PROBLEM - 1] + "…"
    return (
        f"{path} is damaged ({problem}); nothing was written to it. Copy it somewhere safe, "
        f"then rebuild it: sqlite3 {path} .recover | sqlite3 recovered.db"
    )


def _identity(path: Path) -> str:
    """What changes whenever anything writes the main file (a checkpoint, or damage)."""
    info = path.stat()
    return f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns}\n"


def _checked_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKED_SUFFIX)


def _read_checked(path: Path) -> str:
    try:
        with _checked_path(path).open(encoding="ascii") as file:
            return file.read(200)
    except (OSError, ValueError):
        return ""


def _record_checked(path: Path, identity: str) -> None:
    """Remember a clean check; a directory we cannot write only means checking every time."""
    target = _checked_path(path)
    import secrets  # not at import: it costs every client a few ms before its first frame

    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, identity.encode("ascii"))
        finally:
            os.close(fd)
        os.replace(temp, target)
    except OSError:
        temp.unlink(missing_ok=True)


async def _quick_check(conn: aiosqlite.Connection) -> str:
    """Nothing when SQLite finds every page sound, else its first complaint and how many more."""
    try:
        rows = [str(row[0]) for row in await conn.execute_fetchall("PRAGMA quick_check")]
    except sqlite3.DatabaseError as error:
        return str(error)
    if rows == ["ok"]:
        return ""
    problems = [row for row in rows if not row.startswith("*** in database")]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return " ".join((problems[0] if problems else "not ok").split()) + more


class _TaskLock:
    """An asyncio lock the holding task may re-enter.

    Every task shares one connection, and SQLite has one transaction per
    connection: without this, two tasks' writes interleave inside each other's
    transactions. Re-entry lets a transaction body call the read helpers.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        me = asyncio.current_task()
        if me is not None and self._owner is me:
            yield
            return
        async with self._lock:
            self._owner = me
            try:
                yield
            finally:
                self._owner = None


class Database:
    """One aiosqlite connection plus the transaction helpers every repository uses."""

    def __init__(
        self, conn: aiosqlite.Connection, path: Path, busy_timeout_ms: int, clock: Clock
    ) -> None:
        self.conn = conn
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.clock = clock
        self._lock = _TaskLock()
        self.damage = ""
        """Why the file may not be written (quick_check's verdict), or "" when it may."""
        self.checked_pages = False
        """Whether this open ran quick_check; False when the file was unchanged since
        the last clean check, or was just created."""
        self.check_pending = False
        """True until the first write when the open left the check to it (`check_on_write`)."""

    def now(self) -> str:
        """The current time as the store writes it."""
        return iso(self.clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A `BEGIN IMMEDIATE` transaction: committed on success, rolled back on any error.

        Refused before it begins when the file is damaged (a check the open left to the first
        write runs here, once).
        """
        if self.damage:
            raise DamagedDatabase(self.damage)
        async with self._lock.hold():
            if self.check_pending:
                self.check_pending = False
                await _check_pages(self, allow_damaged=True)
                if self.damage:
                    raise DamagedDatabase(self.damage)
            try:
                await self._execute("BEGIN IMMEDIATE")
            except BaseException:
                # Cancelled while BEGIN was queued: the connection's thread still runs it,
                # and a transaction left open would refuse every later one on this connection.
                await self._rollback()
                raise
            try:
                yield self.conn
            except sqlite3.Error as error:
                await self._rollback()
                raise _translate(error, self.path, self.busy_timeout_ms) from error
            except BaseException:
                await self._rollback()
                raise
            try:
                await self.conn.execute("COMMIT")
            except sqlite3.Error as error:
                await self._rollback()
                raise _translate(error, self.path, self.busy_timeout_ms) from error

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A deferred transaction, so several SELECTs see one snapshot."""
        async with self._lock.hold():
            try:
                # Inside the try: a reader cancelled while BEGIN was queued still rolls back.
                await self._execute("BEGIN")
                yield self.conn
            except sqlite3.Error as error:
                raise _translate(error, self.path, self.busy_timeout_ms) from error
            finally:
                await self._rollback()

    async def _execute(self, sql: str) -> None:
        try:
            await self.conn.execute(sql)
        except sqlite3.Error as error:
            raise _translate(error, self.path, self.busy_timeout_ms) from error

    async def _rollback(self) -> None:
        # Failing here means no transaction was open, which is the state we wanted.
        with contextlib.suppress(sqlite3.Error):
            await self.conn.execute("ROLLBACK")

    async def fetchall(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Run one SELECT (in the caller's transaction, if it holds one); return every row."""
        async with self._lock.hold():
            try:
                return list(await self.conn.execute_fetchall(sql, params))
            except sqlite3.Error as error:
                raise _translate(error, self.path, self.busy_timeout_ms) from error

    async def fetchone(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Row | None:
        """Run one SELECT and return its first row, if any."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def schema_version(self) -> int:
        """The highest migration applied, 0 for an empty database."""
        row = await self.fetchone(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
        if row is None:
            other = await self.fetchone(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
            if other is not None and other[0]:
                raise StoreError(f"{self.path} is not an auto-tundra database (no schema_version)")
            return 0
        version = await self.fetchone("SELECT max(version) FROM schema_version")
        return int(version[0] or 0) if version is not None else 0

    async def migrate(self) -> int:
        """Apply pending migrations; refuse a database from a newer version untouched."""
        current = await self.schema_version()
        if current > SCHEMA_VERSION:
            raise FutureSchema(
                f"{self.path} has schema version {current}, newer than this auto-tundra "
                f"understands ({SCHEMA_VERSION}); upgrade auto-tundra to use it"
            )
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            async with self.write() as conn:
                # Another process may have migrated while we waited for the lock.
                if await self.schema_version() >= migration.version:
                    continue
                if migration.version == 1:
                    await conn.execute(
                        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                        "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
                    )
                for statement in _split_sql(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) "
                    "VALUES (?, ?, ?)",
                    (migration.version, migration.description, self.now()),
                )
        return SCHEMA_VERSION

    async def integrity_check(self) -> str:
        """SQLite's own verdict on the file: 'ok' or the first problems it found."""
        rows = await self.fetchall("PRAGMA integrity_check")
        return "; ".join(str(row[0]) for row in rows)

    async def close(self) -> None:
        """Close the connection; safe to call twice."""
        await self.conn.close()


async def _check_pages(db: Database, allow_damaged: bool) -> None:
    """Run quick_check unless the file is unchanged since the last clean one; act on it."""
    identity = _identity(db.path)
    if identity == _read_checked(db.path):
        return
    db.checked_pages = True
    problem = await _quick_check(db.conn)
    if not problem:
        _record_checked(db.path, identity)
        return
    db.damage = _damaged(db.path, problem)
    if not allow_damaged:
        raise DamagedDatabase(db.damage)


async def _in_wal(conn: aiosqlite.Connection) -> bool:
    """Whether the file is already in WAL mode (asking changes nothing)."""
    try:
        rows = list(await conn.execute_fetchall("PRAGMA journal_mode"))
    except sqlite3.DatabaseError:
        return False  # unreadable header: let the check at open say why
    return bool(rows) and str(rows[0][0]).lower() == "wal"


def _casefold(text: object) -> object:
    return text.casefold() if isinstance(text, str) else text


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


async def open_database(
    path: Path,
    *,
    busy_timeout_ms: int = 5000,
    synchronous: str = "normal",
    clock: Clock = system_clock,
    create: bool = True,
    allow_damaged: bool = False,
    check_on_write: bool = False,
) -> Database:
    """Open (creating 0600 if allowed) and migrate the database at `path`.

    A file that fails quick_check raises DamagedDatabase, so nothing (the daemon, a
    command) starts writing to it; with `allow_damaged` it opens for reading instead,
    and every `write()` raises that same one line. With `check_on_write` (which implies
    `allow_damaged`) the check waits for the first `write()`, and a process that only
    reads never pays it; a file not yet in WAL mode is checked at open, as switching it
    writes.
    """
    if synchronous not in ("normal", "full"):
        raise StoreError(f"store.synchronous must be 'normal' or 'full', got {synchronous!r}")
    if path.is_symlink():
        # SQLite would follow it and create the target with the umask's mode.
        raise StoreError(f"refusing to open {path}: it is a symbolic link")
    created = not path.exists()
    if created:
        if not create:
            raise StoreError(f"no database at {path} (run `at init`)")
        if not path.parent.is_dir():
            raise StoreError(f"cannot create {path}: its directory does not exist")
        create_private_file(path)
    _tighten(path)
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        raise _translate(error, path, busy_timeout_ms) from error
    conn.row_factory = sqlite3.Row
    # SQLite's lower() folds ASCII only; search must match "École" as typed.
    await conn.create_function("casefold", 1, _casefold, deterministic=True)
    db = Database(conn, path, busy_timeout_ms, clock)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not created and check_on_write and await _in_wal(conn):
            db.check_pending = True  # migrate() below writes only through write()
        elif not created:
            await _check_pages(db, allow_damaged or check_on_write)
        version = await db.schema_version()
        if version > SCHEMA_VERSION:
            await db.migrate()  # raises FutureSchema before anything is written
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await db.migrate()
    except sqlite3.Error as error:
        await conn.close()
        raise _translate(error, path, busy_timeout_ms) from error
    except BaseException:
        await conn.close()
        raise
    return db
