"""`sqltune prepare`: a Spider folder to chat JSONL with an exact token budget."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tui.core.budget.pricing import load_table
from tui.core.data.jsonl import WriteResult
from tui.core.data.prepare import (
    PrepareError,
    PrepareOptions,
    PrepareResult,
    Skipped,
    prepare,
    template_named,
)
from tui.core.data.prompts import PromptTemplateError

EXIT_USAGE = 2


def options_from_args(args: argparse.Namespace) -> PrepareOptions:
    """PrepareOptions from the parsed command line; PrepareError when they make no sense."""
    template = template_named(args.template)
    name: str | None = args.template
    if args.sample_values is not None or args.sample_rows is not None:
        try:
            customised = template.with_samples(args.sample_values, args.sample_rows)
        except PromptTemplateError as error:
            raise PrepareError(str(error)) from None
        if customised != template:
            template, name = customised, f"{args.template}+custom"
    databases = frozenset(db for db in args.validation_databases.split(",") if db.strip())
    if (args.validation_fraction > 0 or databases) and args.validation_out is None:
        raise PrepareError("a validation split needs --validation-out FILE")
    if args.validation_out is not None and not (args.validation_fraction > 0 or databases):
        raise PrepareError("--validation-out needs --validation-fraction or "
                           "--validation-databases")
    return PrepareOptions(
        model=args.model, epochs=args.epochs, token_limit=args.token_limit,
        strategy=args.strategy, seed=args.seed, split=args.split, template=template,
        template_name=name, gold_check=args.gold,
        skip_empty_databases=not args.keep_empty_databases,
        validation_fraction=args.validation_fraction,
        validation_db_ids=frozenset(db.strip() for db in databases),
    )


def run(args: argparse.Namespace) -> int:
    """Print the budget (one JSON object with --json); exit 2 on unusable input."""
    from tui.core.budget.counters import base_counter, base_from_name

    # an open-weight base (config.toml's local server bases too) counts with its own tokenizer
    base = base_from_name(args.model, _registered_bases())
    try:
        result = prepare(args.dir, options_from_args(args),
                         counter=base_counter(base) if base is not None else None)
    except PrepareError as error:
        return _fail(args, str(error), EXIT_USAGE)
    written: WriteResult | None = None
    if args.out is not None:
        try:
            written = result.write(args.out, args.validation_out)
        except OSError as error:
            return _fail(args, f"cannot write {args.out}: {error.strerror or error}", 1)
        _record(result, written)
    if args.json:
        print(json.dumps(result.to_json(written), ensure_ascii=False))
    else:
        print(summary(result, written))
    return 0


def _record(result: PrepareResult, written: WriteResult) -> None:
    """Remember the file's dataset and template (lineage), so a model trained on it is asked
    with that template; a history that cannot be written is a warning, the file stands."""
    from tui.core.finetune.lineage import record_prepared
    from tui.core.history import HistoryError

    try:
        record_prepared(result, written)
    except (HistoryError, OSError) as error:
        print(f"sqltune prepare: warning: the template of {written.path} was not recorded "
              f"({error}); a model trained on it will be asked with the default template",
              file=sys.stderr)


def _registered_bases() -> dict[str, str]:
    """config.toml's ``[local_server.base_models]`` (NAME = SOURCE); empty when unreadable."""
    from tui.core.provider.config import ConfigError, load_config

    try:
        return dict(getattr(load_config(), "base_models", {}) or {})
    except (ConfigError, OSError):
        return {}


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if args.json:
        print(json.dumps({"error": message}))
    print(f"sqltune prepare: {message}", file=sys.stderr)
    return code


def _where(item: Skipped) -> str:
    if item.source is None:
        return ""
    return f"{item.db_id}, {item.source} #{item.index}: "


def _money(value: float | None) -> str:
    return "not priced" if value is None else f"${value:,.2f}"


def summary(result: PrepareResult, written: WriteResult | None = None) -> str:
    """A readable report of the same figures as the JSON."""
    data: dict[str, Any] = result.to_json(written)
    budget = result.budget
    template = result.options.template
    epochs = f"{budget.epochs} (auto)" if budget.epochs_setting == "auto" else str(budget.epochs)
    rows = [
        ("Dataset", f"{data['dataset']} (split {data['split']})"),
        ("Examples", f"{data['loaded']:,} loaded, {result.skipped_examples:,} skipped, "
                     f"{budget.examples:,} usable, {budget.kept:,} kept"),
        ("Model", f"{budget.model} ({budget.encoding}, context {budget.context_limit:,})"),
        ("Template", f"{data['template']} ({template.sample_values} values per column, "
                     f"{template.sample_rows} rows per table; fingerprint "
                     f"{template.fingerprint()})"),
        ("Epochs", epochs),
        ("Tokens", f"{budget.tokens_per_epoch:,} per epoch, {budget.trained_tokens:,} trained, "
                   f"limit {budget.token_limit:,} ({budget.fraction_of_limit:.0%})"),
        ("Per example", f"mean {budget.mean_example_tokens:,.0f}, longest "
                        f"{budget.max_example_tokens:,}, {budget.over_context} over context"),
        ("Strategy", f"{budget.strategy}" + (f" (seed {budget.seed})"
                                             if budget.strategy == "random" else "")),
        ("Estimated cost", "free (an open-weight base on a sqltune server)" if budget.free
         else _money(budget.estimated_cost_usd)),
    ]
    if budget.encoding_note:
        rows.append(("Note", budget.encoding_note))
    if budget.costs_usd:
        rows.append(("Same tokens on", ", ".join(f"{name} {_money(cost)}"
                                                 for name, cost in budget.costs_usd.items())))
    prices = load_table()
    rows.append(("Prices", f"as of {prices.as_of}; check them on the provider's pricing page"))
    if result.validation:
        rows.append(("Validation", f"{len(result.validation):,} examples held out, "
                                   f"{result.validation_tokens:,} tokens"))
    if written is not None:
        rows.append(("Wrote", f"{written.path} ({written.examples:,} examples)"))
        if written.validation_path is not None:
            rows.append(("Wrote", f"{written.validation_path} "
                                  f"({written.validation_examples:,} examples)"))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if result.skipped:
        lines.append("Skipped:")
        lines.extend(f"  {item.reason:<18} {item.examples:>5}  {_where(item)}{item.message}"
                     for item in result.skipped)
    lines.extend(f"Warning: {warning}" for warning in result.warnings)
    return "\n".join(lines)
