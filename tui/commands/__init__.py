"""Command-line subcommands; each module exposes ``run(args) -> int``."""
