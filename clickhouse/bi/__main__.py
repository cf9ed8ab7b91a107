"""``python -m clickhouse.bi ...``: apply the access SQL to a ClickHouse server, or print deploy's copy."""

from __future__ import annotations

import sys

from clickhouse.bi.access import app_access, apply, deploy_sql, reader_role, seller_access
from livemetrics.settings import get_settings

USAGE = "python -m clickhouse.bi role | access | seller <seller_id> <user> <password> [--analyst] | deploy-sql"


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["deploy-sql"]:
        sys.stdout.write(deploy_sql())
        sys.exit(0)
    s = get_settings()
    if args[:1] == ["role"]:
        stmts = reader_role(s)
    elif args[:1] == ["access"]:
        stmts = app_access(s) + reader_role(s)
    elif args[:1] == ["seller"] and len(args) in (4, 5):
        role = "livemetrics_analyst" if args[4:] == ["--analyst"] else "livemetrics_bi_reader"
        stmts = seller_access(s, *args[1:4], role=role)
    else:
        sys.exit(f"usage: {USAGE}")
    apply(s, stmts)
    print(f"applied {len(stmts)} statements")


if __name__ == "__main__":
    main()
