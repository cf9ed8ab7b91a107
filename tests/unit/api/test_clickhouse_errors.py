"""Which ClickHouse failures make a history route answer 503 (try again) and which stay a 500 (our bug)."""

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from clickhouse.sink_errors import unavailable


def test_unreachable_busy_or_missing_tables_are_unavailable():
    assert unavailable(OperationalError("Error HTTPConnectionPool(...): Connection refused"))
    assert unavailable(DatabaseError("Code: 241. DB::Exception: Memory limit (total) exceeded"))
    assert unavailable(DatabaseError("Code: 202. DB::Exception: Too many simultaneous queries"))
    assert unavailable(DatabaseError("Code: 60. DB::Exception: Table lm.events does not exist"))


def test_a_wrong_query_is_not_unavailable():
    assert not unavailable(DatabaseError("Code: 62. DB::Exception: Syntax error"))
    assert not unavailable(DatabaseError("Code: 47. DB::Exception: Unknown identifier"))
    assert not unavailable(DatabaseError("no code at all"))
    assert not unavailable(ProgrammingError("bad parameter"))
    assert not unavailable(ValueError("x"))
