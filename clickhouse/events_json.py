"""Raw-topic messages -> ``events``, parsed by ClickHouse (``queries/sink_events.sql``).

Decoding events into Arrow columns in Python held the GIL for every row (BENCHMARKS.md, Profiling notes);
here Python only frames each message value as one JSON line with its Kafka position (``sink_batch``) and
ClickHouse parses the lines, with the GIL released. Python decodes no value unless ClickHouse refuses a
batch: then each value is checked (``unusable``), the bad ones are logged, handed to the sink's
``on_refused`` (the dead-letter topic) and skipped, and the rest goes on with the same deduplication
token. A refusal that no value explains is raised: the sink narrows the batch down (``sink_narrow``).

A batch is stored in two steps, so that the sink can parse one batch while it inserts the one before:
- ``prepare``: embedded, the SELECT of ``sink_events.sql`` (its columns and the event's structure derived
  from the contract by ``events_read``) reads the lines from a temporary file
  (``file()``) and writes the ``events`` rows to another one as a Native block (parsing is the
  single-threaded half of a one-statement insert, so the two halves of consecutive batches run side by
  side on two cores; files, because handing the block through Python bytes cost more CPU: BENCHMARKS.md, Profiling notes);
  for a server there is nothing to do: it parses in the insert, on its own cores.
- ``write``: embedded, the Native block is inserted from its file; a server gets the lines as the body
  of ``INSERT ... SELECT ... FROM input()``. Either way only the rows whose (seller_id, event_id) is not
  stored yet, the first of equal keys in the batch (``queries/sink_events_unseen.sql``, migration 007):
  here, since batches are written one at a time, in order, while a prepare overlaps the write before it.
Either way one batch is one block (sequential parsing, one read block, one insert thread), so an insert
is all or nothing and a retry of the same batch has the same deduplication token layout.

Embedded, a batch can also be stored in one statement (``prepare(..., one_statement=True)``: nothing done
there; ``write`` runs the server's statement with ``file()`` reading the lines instead of ``input()``):
the sink does that for a batch its time trigger cut, which no overlap is needed for (``sink_store``), and
saves the Native file's round trip and the second statement.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError

from clickhouse import events_read
from clickhouse.columns import KAFKA_COLUMNS

# position, renumber, unusable: re-exported (tests/unit/clickhouse/test_events_json.py)
from clickhouse.events_unusable import OnRefused, Refused, position, renumber, unusable, without_unusable  # noqa: F401
from livemetrics.contract import COLUMN_NAMES
from livemetrics.process_scratch import ProcessScratch, own_dirs

_TEMPLATE = resources.files("clickhouse.queries").joinpath("sink_events.sql").read_text()
# the rows (embedded: written as a Native block), with the pieces derived from the contract filled in
SELECT = (
    _TEMPLATE[_TEMPLATE.index("\nSELECT\n") + 1 :]
    .replace("{select_columns}", ",\n    ".join(events_read.select_columns()))
    .replace("{event_structure}", events_read.event_structure())
    .replace("{required_missing}", events_read.required_missing())
)
# the write step: only rows whose (seller_id, event_id) is not stored yet (migration 007)
_UNSEEN = "\n".join(
    line
    for line in resources.files("clickhouse.queries").joinpath("sink_events_unseen.sql").read_text().splitlines()
    if not line.startswith("--")
)  # its comments name the fragments
_INPUT = "FROM input('"  # embedded chdb reads the same lines through file() instead
_END = b"]\n"
EVENT_COLUMNS = list(COLUMN_NAMES) + list(KAFKA_COLUMNS)

# Stated explicitly so that a server with other defaults reads the lines the same way.
JSON_INPUT_SETTINGS: dict[str, Any] = {
    "input_format_parallel_parsing": 0,  # one sequential reader: ordered rows, one block per batch
    "max_block_size": 10_000_000,  # well above any batch: the whole batch is one block
    "max_insert_threads": 1,  # and one part: the same batch always gets the same deduplication blocks
    "input_format_null_as_default": 1,
    "input_format_json_defaults_for_missing_elements_in_named_tuple": 1,
    "input_format_json_ignore_unknown_keys_in_named_tuple": 1,
    "input_format_json_named_tuples_as_objects": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
}
# Inserting the prepared Native block: one thread, so one part and the same token layout on a retry.
NATIVE_INSERT_SETTINGS: dict[str, Any] = {"max_insert_threads": 1, "max_block_size": 10_000_000}
# Embedded: each batch's files, in this process's own directory in the temporary directory; a sink killed
# between prepare and write left its batch's folder there for good (one mkdtemp per batch in /tmp): now the
# next sink to start removes the folders of sinks that have ended, and only those (livemetrics.process_scratch).
SCRATCH = ProcessScratch("livemetrics-sink")
# Before 597812d each batch was a ``mkdtemp(prefix="livemetrics-sink-")`` of its own in the temporary
# directory, with no owner to ask; one lived from its prepare to its write (seconds: a failed write removes
# it and prepares the batch again). One untouched for this long was left by a sink that ended.
OLD_STYLE_PREFIX, OLD_STYLE_AGE_S = "livemetrics-sink-", 3600.0


def clean_scratch() -> list[str]:
    """At the sink's start: make its own scratch directory now (removing the folders of sinks that have
    ended, never a running one's: ``process_scratch``) rather than at its first batch, and remove the
    older versions' batch folders untouched for ``OLD_STYLE_AGE_S``. Returns the old-style ones removed."""
    SCRATCH.path()
    removed, before = list[str](), time.time() - OLD_STYLE_AGE_S
    for path, st in own_dirs(tempfile.gettempdir(), OLD_STYLE_PREFIX):
        try:
            with os.scandir(path) as entries:
                newest = max([st.st_mtime] + [e.stat(follow_symlinks=False).st_mtime for e in entries])
        except OSError:
            continue
        if newest < before:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@dataclass
class Prepared:
    """A batch ready for ``write``: its lines (values that are not events skipped, kept in ``refused``)
    and, embedded, the file holding its rows as a Native block (its directory is removed when written, or
    when the batch is dropped unwritten)."""

    heads: list[bytes]
    values: list[bytes]
    native: str | None = None
    refused: list[Refused] = field(default_factory=list)
    _remove: weakref.finalize | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.native:
            self._remove = weakref.finalize(self, _remove_dir, os.path.dirname(self.native))

    @property
    def rows(self) -> int:
        return len(self.heads)

    def discard(self) -> None:
        if self._remove:
            self._remove()


def _remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _quote(v: Any) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _settings_clause(settings: dict[str, Any]) -> str:
    # a SETTINGS clause instead of settings=...: chdb would SET and restore each one (BENCHMARKS.md, Profiling notes)
    return "\nSETTINGS " + ", ".join(f"{k} = {_quote(v)}" for k, v in settings.items())


def _lines(heads: list[bytes], values: list[bytes]):
    """The batch's JSON lines as pieces (head, value, end), for a file or a request body."""
    return itertools.chain.from_iterable(zip(heads, values, itertools.repeat(_END)))


def _write_lines(folder: str, heads: list[bytes], values: list[bytes]) -> str:
    """The batch's JSON lines in a new file of ``folder``; returns its path."""
    lines = os.path.join(folder, "lines.jsonl")
    with open(lines, "wb", buffering=1 << 20) as f:
        f.writelines(_lines(heads, values))
    return lines


def _select_from_file(lines: str, rows: int) -> str:
    """``SELECT`` reading the batch's ``rows`` lines from the file ``lines`` instead of ``input()`` (embedded)."""
    return SELECT.replace("{rows}", str(rows)).replace(_INPUT, f"FROM file({_quote(lines)}, 'JSONCompactEachRow', '")


def _native(client, heads: list[bytes], values: list[bytes]) -> str:
    """Embedded: writes the ``events`` rows of these lines to a new Native file and returns its path
    (raises if ClickHouse refuses them, leaving no file)."""
    folder = SCRATCH.mkdtemp(prefix="batch-")
    native = os.path.join(folder, "rows.native")
    try:
        lines = _write_lines(folder, heads, values)
        sql = _select_from_file(lines, len(heads))
        client.command(
            f"INSERT INTO FUNCTION file({_quote(native)}, 'Native')\n{sql}" + _settings_clause(JSON_INPUT_SETTINGS)
        )
        os.unlink(lines)
        return native
    except BaseException:
        _remove_dir(folder)
        raise


def prepare(client, heads: list[bytes], values: list[bytes], embedded: bool, one_statement: bool = False) -> Prepared:
    """Step one (see the module's text). Embedded, values that are not events are logged and skipped
    here; a refusal that no value explains is raised (the sink retries the batch). ``one_statement``
    (embedded): nothing is done here; ``write`` parses the lines inside its insert, as a server does."""
    if not embedded or not heads or one_statement:
        return Prepared(heads, values)
    try:
        return Prepared(heads, values, _native(client, heads, values))
    except DatabaseError as refusal:
        heads, values, refused = without_unusable(heads, values, refusal)
    return Prepared(heads, values, _native(client, heads, values) if heads else None, refused)


def write(
    client, db: str, prepared: Prepared, settings: dict[str, Any], embedded: bool, on_refused: OnRefused | None = None
) -> int:
    """Step two: insert the prepared batch into ``{db}.events`` with these insert settings (its
    deduplication token among them); returns the rows written. The values found not to be events are
    given to ``on_refused`` before any row is inserted (so that they are recorded before the rows after
    them are stored: the sink resumes after the highest stored offset)."""
    if embedded and prepared.refused and on_refused:
        on_refused(prepared.refused)
    if not prepared.heads:
        return 0
    if embedded and prepared.native:
        try:
            client.command(
                unseen_insert_sql(db, f"SELECT * FROM file({_quote(prepared.native)}, 'Native')")
                + _settings_clause({**settings, **NATIVE_INSERT_SETTINGS})
            )
        finally:
            prepared.discard()  # a failed write is prepared again (the sink's retry)
        return prepared.rows
    return _insert_lines_skipping_unusable(client, db, prepared, settings, on_refused, embedded)


def insert_events(
    client,
    db: str,
    heads: list[bytes],
    values: list[bytes],
    settings: dict[str, Any],
    embedded: bool,
    one_statement: bool = False,
) -> int:
    """Both steps in this thread (embedded, ``one_statement``: the one statement a server runs), refusing
    the batch (raising, nothing written) if a value is not an event."""
    if embedded and not one_statement:
        return write(client, db, Prepared(heads, values, _native(client, heads, values)), settings, embedded)
    _insert_lines(client, db, heads, values, settings, embedded)
    return len(heads)


def _insert_lines(
    client, db: str, heads: list[bytes], values: list[bytes], settings: dict[str, Any], embedded: bool = False
) -> None:
    """One statement: a server's ``INSERT ... SELECT ... FROM input()`` with the lines as its body; embedded,
    the same SELECT reads them from a scratch file (``file()``), removed after."""
    if embedded:
        folder = SCRATCH.mkdtemp(prefix="batch-")
        try:
            sql = _select_from_file(_write_lines(folder, heads, values), len(heads))
            client.command(unseen_insert_sql(db, sql) + _settings_clause({**JSON_INPUT_SETTINGS, **settings}))
        finally:
            _remove_dir(folder)
        return
    client.command(
        server_insert_sql(db, len(heads)),
        data=b"".join(_lines(heads, values)),
        settings={**JSON_INPUT_SETTINGS, **settings},
    )


def server_insert_sql(db: str, rows: int) -> str:
    """The statement a server runs for a batch of ``rows`` lines sent as the request body."""
    return (
        unseen_insert_sql(db, SELECT.replace("{db}", db).replace("{rows}", str(rows))) + "\nFORMAT JSONCompactEachRow"
    )


def unseen_insert_sql(db: str, rows: str) -> str:
    """``INSERT INTO {db}.events`` of the rows the SELECT ``rows`` gives whose (seller_id, event_id) is not
    stored yet, the first of equal keys only (``queries/sink_events_unseen.sql``)."""
    return _UNSEEN.replace("{columns}", ", ".join(EVENT_COLUMNS)).replace("{rows}", rows.strip()).replace("{db}", db)


def _insert_lines_skipping_unusable(
    client, db: str, prepared: Prepared, settings: dict[str, Any], on_refused: OnRefused | None, embedded: bool
) -> int:
    heads, values = prepared.heads, prepared.values
    try:
        _insert_lines(client, db, heads, values, settings, embedded)
        return len(heads)
    except DatabaseError as refusal:
        heads, values, prepared.refused = without_unusable(heads, values, refusal)
    if on_refused:
        on_refused(prepared.refused)
    if heads:
        _insert_lines(client, db, heads, values, settings, embedded)
    return len(heads)
