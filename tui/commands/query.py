"""`sqltune query`: run one SQL statement read-only and print the rows or the error."""

from __future__ import annotations

import argparse
import json
import sys

from tui.core.sql.sqlexec import QueryError, format_table, run_readonly


def run(args: argparse.Namespace) -> int:
    """Print {columns, rows, row_count, truncated, elapsed_ms} or {error}; exit 1 on error."""
    if args.max_rows < 0 or not args.timeout > 0:
        failure = QueryError("invalid_argument", "--timeout must be > 0 and --max-rows >= 0")
        return _fail(args, failure)
    try:
        result = run_readonly(args.db, args.sql, timeout=args.timeout, max_rows=args.max_rows)
    except QueryError as error:
        return _fail(args, error)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(format_table(result))
    return 0


def _fail(args: argparse.Namespace, error: QueryError) -> int:
    if args.json:
        print(json.dumps(error.to_json()))
    else:
        print(f"error ({error.type}): {error.message}", file=sys.stderr)
    return 1
