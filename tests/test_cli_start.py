"""The app's command line is read without building every subcommand's parser, to the same
result as the whole parser; anything else goes to the whole parser."""

from __future__ import annotations

import pytest

from tui.cli import _app_arguments, build_parser


@pytest.mark.parametrize("argv", [
    [], ["--data", "demo"], ["--data=demo", "--provider", "lab"],
    ["--provider", "lab", "--data", "demo"], ["--dat", "demo"], ["--data", "a", "--data", "b"],
])
def test_the_app_alone_reads_as_the_whole_parser_does(argv: list[str]) -> None:
    quick = _app_arguments(argv)
    assert quick is not None and quick == build_parser().parse_args(argv)
    assert quick.command is None


@pytest.mark.parametrize("argv", [
    ["prepare", "demo"], ["--provider", "lab", "jobs", "list"], ["-h"], ["--help"],
    ["--data"], ["--bogus"], ["--data", "--provider", "lab"], ["--", "x"],
])
def test_anything_else_goes_to_the_whole_parser(argv: list[str]) -> None:
    assert _app_arguments(argv) is None
