"""BI access on a ClickHouse server: the read-only role and one row-policy-restricted login per seller
(``clickhouse/bi/*.sql``). Refuses embedded chdb, which has no users or policies worth the name."""

from __future__ import annotations

import re
import sys
from importlib import resources

from clickhouse.client import get_client
from clickhouse.migrate import statements
from livemetrics.settings import Settings, get_settings

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(name: str, settings: Settings, **values: str) -> list[str]:
    sql = resources.files("clickhouse.bi").joinpath(f"{name}.sql").read_text()
    for k, v in values.items():
        sql = sql.replace("{" + k + "}", v)
    return statements(sql, settings)


def apply(settings: Settings, stmts: list[str]) -> None:
    if settings.clickhouse_embedded:
        raise RuntimeError("BI roles and row policies are for ClickHouse servers; embedded chdb has no access control")
    c = get_client(settings)
    for s in stmts:
        c.command(s)


def reader_role(settings: Settings) -> list[str]:
    return render("reader_role", settings)


def seller_access(settings: Settings, seller_id: str, user: str, password: str) -> list[str]:
    if not _IDENT.match(user):
        raise ValueError(f"BI user name {user!r} must be lower-case letters, digits and _")
    return render("seller_access", settings, user=user, password=_quote(password), seller_id=_quote(seller_id))


if __name__ == "__main__":  # python -m clickhouse.bi role | seller <seller_id> <user> <password>
    s = get_settings()
    args = sys.argv[1:]
    stmts = reader_role(s) if args[:1] == ["role"] else seller_access(s, *args[1:4])
    apply(s, stmts)
    print(f"applied {len(stmts)} statements")
