"""Chat JSONL writing, OpenAI-style validation (a corpus of malformed files) and the lazy reader."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tui.core.data.jsonl import (
    ChatExample,
    Issue,
    ValidationSplit,
    openai_error_message,
    validate_bytes,
    validate_jsonl,
    write_chat_jsonl,
)
from tui.core.data.jsonl_reader import JsonlReader
from tui.core.data.jsonl_rules import ISSUE_CODES

CORPUS = Path(__file__).parent / "malformed"
MANIFEST: dict[str, dict[str, list[list[Any]]]] = json.loads(
    (CORPUS / "manifest.json").read_text(encoding="utf-8"))


def chat(i: int, db_id: str = "concert") -> ChatExample:
    return ChatExample([
        {"role": "system", "content": "You write SQL.\n\nCREATE TABLE singer (id INT, age INT);"},
        {"role": "user", "content": f"How many singers are older than {i}?"},
        {"role": "assistant", "content": f"SELECT count(*) FROM singer WHERE age > {i}"},
    ], db_id)


def triples(issues: Sequence[Issue]) -> set[tuple[int, str, str | None]]:
    return {(issue.line, issue.code, issue.field) for issue in issues}


# ---------------------------------------------------------------- corpus


def test_corpus_is_big_enough_and_every_file_is_listed() -> None:
    files = {path.name for path in CORPUS.glob("*.jsonl")}
    assert files == set(MANIFEST)
    assert sum(1 for entry in MANIFEST.values() if entry["errors"]) >= 25


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_malformed_file_gives_its_line_numbered_problems(name: str) -> None:
    report = validate_jsonl(CORPUS / name, count_tokens=False)
    expected = MANIFEST[name]
    assert triples(report.errors) == {tuple(e) for e in expected["errors"]}
    assert triples(report.warnings) == {tuple(w) for w in expected["warnings"]}
    assert report.ok is (not expected["errors"])
    for issue in [*report.errors, *report.warnings]:
        assert issue.message and ISSUE_CODES[issue.code].startswith(issue.severity)


def test_every_code_is_documented_and_exercised() -> None:
    emitted = {entry[1] for expected in MANIFEST.values()
               for entry in [*expected["errors"], *expected["warnings"]]}
    assert emitted | {"over_context"} == set(ISSUE_CODES)  # over_context: tested below


def test_report_to_dict_has_the_cli_shape() -> None:
    report = validate_jsonl(CORPUS / "unknown_role_bot.jsonl", count_tokens=False)
    data = report.to_dict()
    assert data["ok"] is False and data["examples"] == 12
    assert data["errors"] == [{"line": 6, "code": "unknown_role", "field": "messages[2].role",
                               "message": report.errors[0].message}]
    json.dumps(data)


def test_openai_wording_counts_examples_and_messages_from_one() -> None:
    report = validate_jsonl(CORPUS / "unknown_role_bot.jsonl", count_tokens=False)
    text = report.first_error_message()
    assert text is not None
    assert text.startswith("Invalid file format. Example 6, message 3: Unrecognized role 'bot'")
    few = Issue(0, "too_few_examples", "Training file has 5 example(s), but must have at least "
                "10 examples")
    assert openai_error_message(few) == few.message


def test_validation_goes_on_after_errors_and_caps_what_it_keeps() -> None:
    lines = [b'{"messages": 1}'] * 250 + [json.dumps({"messages": chat(1).messages}).encode()]
    report = validate_bytes(b"\n".join(lines) + b"\n", count_tokens=False, max_issues=100)
    assert report.examples == 251
    assert len(report.errors) == 100 and report.omitted_errors == 150
    assert report.errors[-1].line == 100
    assert report.to_dict()["omitted_errors"] == 150


def test_valid_file_counts_tokens_with_the_real_tokenizer(tmp_path: Path) -> None:
    result = write_chat_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(12)])
    report = validate_jsonl(result.path, "gpt-4o-mini-2024-07-18")
    assert report.ok and report.examples == 12 and not report.warnings
    assert report.context_limit == 65_536
    assert report.max_example_tokens is not None and 30 < report.max_example_tokens < 100
    assert report.total_tokens is not None and report.total_tokens >= 12 * 30


def test_unknown_model_gets_a_note(tmp_path: Path) -> None:
    result = write_chat_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(10)])
    report = validate_jsonl(result.path, "my-own-model")
    assert report.ok and report.note and "o200k_base" in report.note


def test_over_context_is_a_warning_with_a_pluggable_counter(tmp_path: Path) -> None:
    examples = [chat(i) for i in range(10)]
    long = chat(99)
    examples.insert(3, ChatExample([*long.messages[:1], {"role": "user", "content": "x " * 500},
                                    long.messages[2]]))
    path = write_chat_jsonl(tmp_path / "t.jsonl", examples).path

    def characters(messages: Sequence[Mapping[str, Any]]) -> int:
        return sum(len(str(m.get("content", ""))) for m in messages)

    report = validate_jsonl(path, token_check=characters, context=500)
    assert report.ok
    assert triples(report.warnings) == {(4, "over_context", "messages")}
    assert "truncated" in report.warnings[0].message
    assert report.max_example_tokens is not None and report.max_example_tokens > 1000


# ---------------------------------------------------------------- writing


def test_writer_streams_a_generator_and_output_validates(tmp_path: Path) -> None:
    def examples() -> Iterator[ChatExample]:
        for i in range(15):
            yield chat(i)

    result = write_chat_jsonl(tmp_path / "out" / "train.jsonl", examples())
    assert result.examples == 15 and result.bytes == result.path.stat().st_size
    rows = [json.loads(line) for line in result.path.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == {"messages": chat(0).messages}
    assert validate_jsonl(result.path, count_tokens=False).ok
    assert [p.name for p in result.path.parent.iterdir()] == ["train.jsonl"]


def test_writer_accepts_plain_message_lists_and_keeps_unicode(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Où est Zoë ?"},
                {"role": "assistant", "content": "SELECT 'é'"}]
    result = write_chat_jsonl(tmp_path / "t.jsonl", [messages])
    assert "Où est Zoë" in result.path.read_text(encoding="utf-8")


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "train.jsonl"
    target.write_text("old\n", encoding="utf-8")

    def broken() -> Iterator[ChatExample]:
        yield chat(1)
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        write_chat_jsonl(target, broken(), validation=ValidationSplit(fraction=0.5),
                         validation_path=tmp_path / "valid.jsonl")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


def test_validation_split_by_fraction_is_exact_and_seeded(tmp_path: Path) -> None:
    examples = [chat(i) for i in range(100)]

    def run(seed: int) -> tuple[list[str], list[str]]:
        result = write_chat_jsonl(tmp_path / "t.jsonl", examples,
                                  validation=ValidationSplit(fraction=0.2, seed=seed),
                                  validation_path=tmp_path / "v.jsonl")
        assert (result.examples, result.validation_examples) == (80, 20)
        return (result.path.read_text().splitlines(),
                (tmp_path / "v.jsonl").read_text().splitlines())

    first, again, other = run(7), run(7), run(8)
    assert first == again and first != other
    assert sorted(first[0] + first[1]) == sorted(
        json.dumps({"messages": e.messages}, separators=(",", ":")) for e in examples)


def test_validation_split_by_database(tmp_path: Path) -> None:
    examples = [chat(i, db_id="a" if i % 4 else "b") for i in range(40)]
    result = write_chat_jsonl(tmp_path / "t.jsonl", examples,
                              validation=ValidationSplit(db_ids=frozenset({"b"})),
                              validation_path=tmp_path / "v.jsonl")
    assert (result.examples, result.validation_examples) == (30, 10)
    assert result.validation_path == tmp_path / "v.jsonl"


def test_split_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ValidationSplit(fraction=1.0)
    with pytest.raises(ValueError, match="validation_path"):
        write_chat_jsonl(tmp_path / "t.jsonl", [chat(1)], validation=ValidationSplit(0.5))
    assert not (tmp_path / "t.jsonl").exists()


# ---------------------------------------------------------------- lazy reader


def write_lines(path: Path, lines: Sequence[bytes], ending: bytes = b"\n",
                final: bool = True) -> Path:
    path.write_bytes(ending.join(lines) + (ending if final else b""))
    return path


def spider_line(i: int, db_id: str, question: str) -> bytes:
    return json.dumps({"db_id": db_id, "question": question,
                       "query": f"SELECT {i}"}, ensure_ascii=True).encode()


def test_reader_indexes_lines_and_parses_on_demand(tmp_path: Path) -> None:
    path = write_chat_jsonl(tmp_path / "t.jsonl", [chat(i) for i in range(1000)]).path
    with JsonlReader(path) as reader:
        assert len(reader) == 1000
        row = reader[999]
        assert row.line == 1000 and row.error is None
        assert row.question == "How many singers are older than 999?"
        assert row.sql == "SELECT count(*) FROM singer WHERE age > 999"
        assert reader[-1] == row
        page = reader.page(990, 50)
        assert [r.index for r in page] == list(range(990, 1000))
        with pytest.raises(IndexError):
            reader[1000]


@pytest.mark.parametrize(("ending", "final"), [(b"\n", True), (b"\n", False), (b"\r\n", True)])
def test_reader_line_endings(tmp_path: Path, ending: bytes, final: bool) -> None:
    lines = [spider_line(i, "db", f"q{i}") for i in range(3)]
    with JsonlReader(write_lines(tmp_path / "t.jsonl", lines, ending, final)) as reader:
        assert len(reader) == 3
        assert [reader.raw(i) for i in range(3)] == lines
        assert reader[2].db_id == "db"


def test_reader_rows_for_bad_lines_and_empty_file(tmp_path: Path) -> None:
    lines = [spider_line(0, "db", "q"), b"", b"{broken", b"\xff\xfe"]
    with JsonlReader(write_lines(tmp_path / "t.jsonl", lines)) as reader:
        assert [r.error is None for r in reader.page(0, 10)] == [True, False, False, False]
        assert reader[1].error == "blank line"
        assert reader[2].error is not None and reader[2].error.startswith("not valid JSON")
    with JsonlReader(write_lines(tmp_path / "empty.jsonl", [], final=False)) as reader:
        assert len(reader) == 0 and reader.page(0, 10) == []


def test_filter_by_text_and_database_scans_incrementally(tmp_path: Path) -> None:
    lines = [spider_line(i, "concert" if i % 2 else "flights",
                         "Which café sells tea?" if i % 7 == 0 else f"How many singers {i}?")
             for i in range(300)]
    with JsonlReader(write_lines(tmp_path / "s.jsonl", lines)) as reader:
        scan = reader.filter(db_id="concert")
        assert scan.advance(100) is False and scan.scanned == 100
        assert len(scan.matches) == 50
        scan.run()
        assert scan.done and list(scan.matches) == list(range(1, 300, 2))
        # Non-ASCII text is written \\u-escaped here: found all the same, any case.
        assert list(reader.filter("CAFÉ").run()) == list(range(0, 300, 7))
        both = reader.filter("café", db_id="concert").run()
        assert list(both) == [i for i in range(300) if i % 14 == 7]
        assert list(reader.filter("singers 13?").run()) == [13]
        stopped = reader.filter("singers")
        stopped.run(should_stop=lambda: stopped.scanned >= 40, step=20)
        assert stopped.scanned == 40


def test_chat_filter_ignores_the_shared_schema(tmp_path: Path) -> None:
    path = write_chat_jsonl(tmp_path / "t.jsonl", [chat(i) for i in range(30)]).path
    with JsonlReader(path) as reader:
        assert len(reader.filter("CREATE TABLE").run()) == 0
        assert list(reader.filter("older than 2?").run()) == [2]
        by_db = reader.filter(db_id="x", db_of=lambda record: "x" if "1" in str(record) else None)
        assert list(by_db.run()) == [1, *range(10, 20), 21]


def test_reader_reads_in_bounded_blocks(tmp_path: Path) -> None:
    lines = [spider_line(i, "db", "q" * 100) for i in range(50)]
    with JsonlReader(write_lines(tmp_path / "t.jsonl", lines)) as reader:
        assert reader.rows_within(0, 1, 50) == 1
        size = len(lines[0]) + 1
        assert reader.rows_within(0, size * 10, 50) == 10
        assert reader.rows_within(45, 10**9, 50) == 5
        assert reader.rows_within(50, 10**9, 50) == 0
