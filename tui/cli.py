"""sqltune's command line: the app by default, plus scriptable subcommands."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tui.core.models import DEFAULT_MODEL

SUBCOMMANDS = ("prepare", "validate", "server", "query", "eval", "watch", "serve", "files",
               "jobs", "adapters")


def _epochs(value: str) -> int | str:
    if value == "auto":
        return value
    number = int(value)
    if not 1 <= number <= 50:
        raise argparse.ArgumentTypeError("epochs must be 'auto' or a whole number from 1 to 50")
    return number


def _server_actions(server: argparse.ArgumentParser) -> None:
    """``sqltune server``'s idle option and its start/status/stop actions."""
    server.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                        help="stop after this long with no request and no running job "
                             "(0: never; default: never here, 600 for the background service)")
    server.add_argument("--service", action="store_true", help=argparse.SUPPRESS)
    actions = server.add_subparsers(dest="server_action", metavar="ACTION")
    folder = "the server's data folder (default: the user data folder's server/)"
    start = actions.add_parser("start", help="start the folder's background service (or find "
                                             "the running one) and print its URL")
    start.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=folder)
    start.add_argument("--speed", default=None, help="demo (default), a factor such as 4, or max")
    start.add_argument("--idle-timeout", type=float, metavar="SECONDS", default=None,
                       help="stop after this long idle (default 600; 0: never)")
    status = actions.add_parser("status", help="URL, pid, uptime and jobs of the folder's "
                                               "server; exit 3 when none runs")
    status.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=folder)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    stop = actions.add_parser("stop", help="stop the folder's server gracefully (running jobs "
                                           "snapshot and resume on the next start)")
    stop.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=folder)
    stop.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                      help="how long to wait for it to exit (default 30)")


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
    prepare.add_argument("--model", default=DEFAULT_MODEL)
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
    validate.add_argument("--model", default=DEFAULT_MODEL)

    server = sub.add_parser(
        "server", help="run the local OpenAI-compatible server",
        description="Without an ACTION, serve the data folder in the foreground until Ctrl-C "
                    "(exit 1 at once when another server already holds the folder). Every "
                    "other sqltune attaches to the folder's server, or starts it in the "
                    "background when none runs.")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8765,
                        help="port to listen on (default 8765; 0: any free port)")
    server.add_argument("--data-dir", type=Path, help="the server's data folder (default: the "
                        "user data folder's server/)")
    server.add_argument("--faults", default="",
                        help='e.g. "drop=0.1,429=0.05,500=0.05,latency=50ms"')
    server.add_argument("--speed", default="demo",
                        help="demo (default), a factor such as 4, or max")
    server.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host (exposes the server and its data)")
    server.add_argument("--base-model", action="append", default=[], metavar="NAME=SOURCE",
                        help="a real base model (repeatable): SOURCE is a Hugging Face repo "
                             "id, a model folder or a .gguf file (default: "
                             "[local_server.base_models] in config.toml, else "
                             "qwen2.5-coder-0.5b-instruct=Qwen/Qwen2.5-Coder-0.5B-Instruct); "
                             "needs the train extra")
    _server_actions(server)

    query = sub.add_parser("query", help="run one SQL statement read-only")
    query.add_argument("--db", type=Path, required=True)
    query.add_argument("sql")
    query.add_argument("--json", action="store_true")
    query.add_argument("--timeout", type=float, default=5.0)
    query.add_argument("--max-rows", type=int, default=1000)

    evaluate = sub.add_parser("eval", help="execution accuracy of a model or predictions file",
                              parents=[_provider_option()])
    evaluate.add_argument("dir", type=Path)
    evaluate.add_argument("--json", action="store_true")
    who = evaluate.add_mutually_exclusive_group(required=True)
    who.add_argument("--model")
    who.add_argument("--predictions", type=Path)
    evaluate.add_argument("--split", default="dev")
    evaluate.add_argument("--concurrency", type=int, default=4)
    evaluate.add_argument("--limit", type=int)
    evaluate.add_argument("--out", type=Path)

    watch = sub.add_parser("watch", help="print a fine-tuning job's events until it ends",
                           parents=[_provider_option()])
    watch.add_argument("job_id")

    _files_parser(sub)
    _jobs_parser(sub)

    serve = sub.add_parser("serve", help="serve the app in a browser",
                           parents=[_provider_option()])
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--allow-remote", action="store_true")

    adapters = sub.add_parser("adapters", help="LoRA adapters of the local server's models")
    adapter_actions = adapters.add_subparsers(dest="adapters_action", metavar="ACTION")
    export = adapter_actions.add_parser(
        "export", help="write a fine-tuned model or checkpoint as a standard PEFT folder "
                       "(adapter_config.json + adapter_model.safetensors)")
    export.add_argument("model", help="a fine-tuned model or checkpoint id (ft:...)")
    export.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="the folder to write (new or empty)")
    export.add_argument("--data-dir", type=Path, help="the server's data folder (default: the "
                        "user data folder's server/)")
    export.add_argument("--json", action="store_true", help="print one JSON object")

    # Hidden (no help=): the README's screenshots, one SVG per pane, made by the app itself.
    shots = sub.add_parser("screenshots")
    shots.add_argument("--out", type=Path, default=Path("assets/screenshots"))
    shots.add_argument("--panes", default="", help="comma-separated pane ids (default: all)")
    shots.add_argument("--size", default="100x30", help="COLUMNSxROWS")
    return parser


def _provider_option() -> argparse.ArgumentParser:
    """``--provider`` after a subcommand too; SUPPRESS keeps a value given before it."""
    option = argparse.ArgumentParser(add_help=False)
    option.add_argument("--provider", default=argparse.SUPPRESS, metavar="NAME",
                        help="provider profile name from config.toml (also accepted before "
                             "the subcommand; default: config, environment, the local server)")
    return option


def _headless_parser(sub: Any, name: str, help_text: str) -> tuple[Any, dict[str, Any]]:
    """The ``files``/``jobs`` parser; its actions share --provider and the exit-code epilog."""
    from tui.commands._headless import EXIT_CODES_EPILOG

    shared: dict[str, Any] = {"parents": [_provider_option()], "epilog": EXIT_CODES_EPILOG,
                              "formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = sub.add_parser(name, help=help_text, description=help_text, **shared)
    actions = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)
    return actions, shared


def _json_option(parser: argparse.ArgumentParser, what: str, extra: str = "") -> None:
    parser.add_argument("--json", action="store_true",
                        help=f"print {what}, unchanged, as one JSON object{extra}")


def _page_options(parser: argparse.ArgumentParser, what: str) -> None:
    _json_option(parser, "the provider's page object (with \"data\")")
    parser.add_argument("--limit", type=_positive(int), metavar="N",
                        help=f"{what} per page (default: the provider's)")
    parser.add_argument("--after", metavar="ID",
                        help="start after this id (the last one of the previous page)")


def _positive(kind: Callable[[str], Any], auto: bool = False) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        if auto and value == "auto":
            return value
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or number <= 0:
            raise argparse.ArgumentTypeError(
                ("'auto' or " if auto else "") + f"a positive number expected, got {value!r}")
        return number
    return parse


def _suffix(value: str) -> str:
    if len(value) > 64:
        raise argparse.ArgumentTypeError(f"at most 64 characters, got {len(value)}")
    return value


def _files_parser(sub: Any) -> None:
    """``sqltune files upload|list|get|content|delete``."""
    actions, epilog = _headless_parser(sub, "files", "the provider's files, for scripts")
    upload = actions.add_parser(
        "upload", help="validate a fine-tuning file, then upload it", **epilog,
        description=textwrap.fill(
            "Validate FILE as the provider would (a malformed file is refused with its line "
            "numbers and nothing is sent), then upload it, with a progress bar when stderr is "
            "a terminal."))
    upload.add_argument("file", type=Path, metavar="FILE", help="the JSONL file to upload")
    upload.add_argument("--purpose", default="fine-tune",
                        help="file purpose (default fine-tune; only fine-tune files are "
                             "validated)")
    upload.add_argument("--model", default=DEFAULT_MODEL,
                        help="model whose context and tokenizer the validation uses")
    _json_option(upload, "the provider's file object")
    listing = actions.add_parser("list", help="list files, newest first", **epilog)
    listing.add_argument("--purpose", help="only files of this purpose (e.g. fine-tune)")
    listing.add_argument("--order", choices=("asc", "desc"),
                         help="by creation time (default: desc, newest first)")
    _page_options(listing, "files")
    get = actions.add_parser("get", help="one file's metadata", **epilog)
    get.add_argument("file_id", metavar="FILE_ID", help="the provider's file id")
    _json_option(get, "the provider's file object")
    content = actions.add_parser(
        "content", help="a file's content, byte for byte", **epilog,
        description=textwrap.fill("Write a file's content unchanged to stdout or --out (it is "
                                  "already machine-readable, so there is no --json)."))
    content.add_argument("file_id", metavar="FILE_ID", help="the provider's file id")
    content.add_argument("--out", type=Path, metavar="PATH",
                         help="write to this file instead of stdout")
    delete = actions.add_parser("delete", help="delete a file", **epilog)
    delete.add_argument("file_id", metavar="FILE_ID", help="the provider's file id")
    _json_option(delete, "the provider's deletion object")


def _jobs_parser(sub: Any) -> None:
    """``sqltune jobs create|list|get|events|checkpoints|cancel|pause|resume``."""
    actions, epilog = _headless_parser(sub, "jobs", "fine-tuning jobs, for scripts")
    create = actions.add_parser(
        "create", help="start a fine-tuning job (a local training file is uploaded first)",
        **epilog, description=textwrap.fill(
            "Print the estimate (trained tokens and price), upload a local training or "
            "validation file (validated first), create the job and, with --wait, follow it "
            "like `sqltune watch`, then print the final job."))
    create.add_argument("--model", required=True, metavar="M", help="base model to fine-tune")
    create.add_argument("--training-file", required=True, metavar="ID|PATH",
                        help="a file id on the provider, or a local JSONL file to upload")
    create.add_argument("--validation-file", metavar="ID|PATH",
                        help="a file id on the provider, or a local JSONL file to upload")
    create.add_argument("--suffix", type=_suffix, help="up to 64 characters added to the "
                                                       "fine-tuned model's name")
    create.add_argument("--epochs", type=_epochs, default="auto", metavar="N|auto",
                        help="passes over the training file (default auto)")
    create.add_argument("--batch-size", type=_positive(int, auto=True), default="auto",
                        metavar="N|auto", help="examples per step (default auto)")
    create.add_argument("--learning-rate-multiplier", type=_positive(float, auto=True),
                        default="auto", metavar="X|auto",
                        help="scales the base learning rate (default auto)")
    create.add_argument("--seed", type=int, metavar="N", help="training seed, for "
                                                            "reproducible jobs")
    create.add_argument("--wait", action="store_true",
                        help="follow the job's events until it ends, then print the final job; "
                             "exit 0 when it succeeded, 1 when it failed or was cancelled")
    _json_option(create, "the provider's job object", " (events go to stderr)")
    listing = actions.add_parser("list", help="list jobs, newest first", **epilog)
    _page_options(listing, "jobs")
    job_id = {"metavar": "JOB_ID", "help": "the provider's job id"}
    get = actions.add_parser("get", help="one job: status, model, files, hyperparameters",
                             **epilog)
    get.add_argument("job_id", **job_id)
    _json_option(get, "the provider's job object")
    events = actions.add_parser("events", help="a job's events (oldest first as text; the "
                                               "provider's newest-first page with --json)",
                                **epilog)
    events.add_argument("job_id", **job_id)
    _page_options(events, "events")
    checkpoints = actions.add_parser("checkpoints", help="a job's checkpoints with their "
                                                         "metrics", **epilog)
    checkpoints.add_argument("job_id", **job_id)
    _page_options(checkpoints, "checkpoints")
    for name, text in (("cancel", "cancel a job"), ("pause", "pause a running job"),
                       ("resume", "resume a paused job")):
        control = actions.add_parser(name, help=text, **epilog)
        control.add_argument("job_id", **job_id)
        _json_option(control, "the provider's job object")


def _app_arguments(argv: Sequence[str] | None) -> argparse.Namespace | None:
    """``--data`` and ``--provider`` alone (the app), read without building every subcommand's
    parser (a start-up cost before the first frame); None for anything else, which the whole
    parser reads (and explains, when it is wrong)."""
    quick = argparse.ArgumentParser(prog="sqltune", add_help=False, exit_on_error=False)
    quick.add_argument("--data", type=Path)
    quick.add_argument("--provider")
    try:
        args, rest = quick.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    if rest:
        return None
    args.command = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqltune`` console script."""
    args = _app_arguments(argv) or build_parser().parse_args(argv)
    if args.command is None:
        # Start-up allocates long-lived objects by the hundred thousand: no collections scan
        # them before the first frame (the app freezes them and turns the collector back on).
        gc.disable()
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
