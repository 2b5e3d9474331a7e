"""sqltune's command line: the app by default, plus scriptable subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

SUBCOMMANDS = ("prepare", "validate", "server", "query", "eval", "watch", "serve")


def _epochs(value: str) -> int | str:
    if value == "auto":
        return value
    number = int(value)
    if not 1 <= number <= 50:
        raise argparse.ArgumentTypeError("epochs must be 'auto' or a whole number from 1 to 50")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line surface (see DESIGN.md: it is a stable contract)."""
    parser = argparse.ArgumentParser(
        prog="sqltune",
        description="A terminal cockpit for fine-tuning text-to-SQL models.",
    )
    parser.add_argument("--data", type=Path, help="Spider-format folder (default: the demo data)")
    parser.add_argument("--provider", help="provider profile name from config.toml")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    prepare = sub.add_parser("prepare", help="Spider folder to chat JSONL with a token budget")
    prepare.add_argument("dir", type=Path)
    prepare.add_argument("--json", action="store_true", help="print one JSON object")
    prepare.add_argument("--out", type=Path, help="write the kept examples as JSONL here")
    prepare.add_argument("--validation-out", type=Path, help="write a validation split here")
    prepare.add_argument("--validation-fraction", type=float, default=0.0)
    prepare.add_argument("--model", default="gpt-4.1-mini-2025-04-14")
    prepare.add_argument("--epochs", type=_epochs, default="auto")
    prepare.add_argument("--token-limit", type=int, default=50_000_000)
    prepare.add_argument(
        "--strategy", choices=("stratified", "shortest", "random"), default="stratified"
    )
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--split", default="train")
    prepare.add_argument("--template", default="default",
                         help="prompt preset: default, compact (schema only) or rich "
                              "(values and example rows)")
    prepare.add_argument("--sample-values", type=int, default=None,
                         help="sample values per column in the schema (0 turns them off)")
    prepare.add_argument("--sample-rows", type=int, default=None,
                         help="example rows per table in the schema (0 turns them off)")
    prepare.add_argument("--validation-databases", default="",
                         help="comma-separated db_ids whose examples all go to validation")
    prepare.add_argument("--gold", choices=("compile", "run", "off"), default="compile",
                         help="check gold SQL: compile it (fast, default), run it, or not at all")
    prepare.add_argument("--keep-empty-databases", action="store_true",
                         help="keep examples whose database has no rows")

    validate = sub.add_parser("validate", help="validate a chat JSONL as the provider does")
    validate.add_argument("file", type=Path)
    validate.add_argument("--json", action="store_true")
    validate.add_argument("--model", default="gpt-4.1-mini-2025-04-14")

    server = sub.add_parser("server", help="run the local OpenAI-compatible server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8765)
    server.add_argument("--data-dir", type=Path)
    server.add_argument("--faults", default="",
                        help='e.g. "drop=0.1,429=0.05,500=0.05,latency=50ms"')
    server.add_argument("--speed", default="demo",
                        help="demo (default), a factor such as 4, or max")
    server.add_argument("--allow-remote", action="store_true")

    query = sub.add_parser("query", help="run one SQL statement read-only")
    query.add_argument("--db", type=Path, required=True)
    query.add_argument("sql")
    query.add_argument("--json", action="store_true")
    query.add_argument("--timeout", type=float, default=5.0)
    query.add_argument("--max-rows", type=int, default=1000)

    evaluate = sub.add_parser("eval", help="execution accuracy of a model or predictions file")
    evaluate.add_argument("dir", type=Path)
    evaluate.add_argument("--json", action="store_true")
    who = evaluate.add_mutually_exclusive_group(required=True)
    who.add_argument("--model")
    who.add_argument("--predictions", type=Path)
    evaluate.add_argument("--split", default="dev")
    evaluate.add_argument("--concurrency", type=int, default=4)
    evaluate.add_argument("--limit", type=int)
    evaluate.add_argument("--out", type=Path)

    watch = sub.add_parser("watch", help="print a fine-tuning job's events until it ends")
    watch.add_argument("job_id")

    serve = sub.add_parser("serve", help="serve the app in a browser")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--allow-remote", action="store_true")

    # Hidden (no help=): the README's screenshots, one SVG per pane, made by the app itself.
    shots = sub.add_parser("screenshots")
    shots.add_argument("--out", type=Path, default=Path("assets/screenshots"))
    shots.add_argument("--panes", default="", help="comma-separated pane ids (default: all)")
    shots.add_argument("--size", default="100x30", help="COLUMNSxROWS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqltune`` console script."""
    args = build_parser().parse_args(argv)
    if args.command is None:
        from tui.app import make_app
        from tui.launch import local_endpoint

        app = make_app(data=args.data, provider=args.provider, start_local=local_endpoint)
        app.run()
        return int(app.return_code or 0)
    module = importlib.import_module(f"tui.commands.{args.command}")
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
