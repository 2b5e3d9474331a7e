"""The dataset preview pane: page through examples, filter them, jump between problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Label, Select, Static
from textual.worker import get_current_worker

from tui.widgets.pane import Pane
from tui.widgets.preview.detail import (
    clip,
    detail_renderable,
    position_text,
    tokens_cell,
    warnings_text,
)
from tui.widgets.preview.render import ExampleRenderer
from tui.widgets.preview.source import ExampleSource, Row, open_source

if TYPE_CHECKING:
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed

PAGE_SIZE = 100
"""Rows held by the table at once: a window, never the whole file."""
QUESTION_WIDTH = 44
"""Characters of the question shown in the table."""


class DatasetPreview(Pane):
    """Examples of the dataset: question, database, SQL, rendered messages and tokens."""

    PANE_ID = "dataset"
    PANE_TITLE = "Dataset"
    DEFAULT_CSS = """
    #dataset-warnings {
        height: auto;
        max-height: 6;
        padding: 0 1;
        display: none;
    }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("right_square_bracket", "page(1)", "Next page", id="dataset.next_page",
                key_display="]", tooltip="Show the next page of examples"),
        Binding("left_square_bracket", "page(-1)", "Prev page", id="dataset.prev_page",
                key_display="[", tooltip="Show the previous page of examples"),
        Binding("n", "problem(1)", "Next problem", id="dataset.next_problem",
                tooltip="Jump to the next example with a validation problem"),
        Binding("N", "problem(-1)", "Prev problem", id="dataset.prev_problem", show=False,
                tooltip="Jump to the previous example with a validation problem"),
        Binding("slash", "filter_text", "Filter", id="dataset.filter", key_display="/",
                tooltip="Filter examples by text in the question or SQL"),
        Binding("d", "filter_database", "Database", id="dataset.database",
                tooltip="Filter examples by database"),
        Binding("escape", "clear_filters", "Clear", id="dataset.clear", show=False,
                tooltip="Clear the filters and go back to the table"),
        Binding("o", "open_data", "Open", id="dataset.open", show=False,
                tooltip="Open another Spider folder or JSONL file"),
    ]

    @dataclass
    class Opened(Message):
        """A dataset was opened and its first page read."""

        source: ExampleSource
        """What the pane pages through."""
        rows: list[Row]
        """The first page."""

    @dataclass
    class PageLoaded(Message):
        """A page of rows was read."""

        page: int
        """Page number (0-based, within the current filter)."""
        rows: list[Row]
        """Its rows."""
        cursor: int = 0
        """Row of the page to put the cursor on."""

    @dataclass
    class Filtered(Message):
        """The filters were applied."""

        positions: list[int] | None
        """Matching example positions (None: no filter)."""

    @dataclass
    class TokensCounted(Message):
        """Tokens of the examples on the page were counted."""

        tokens: dict[int, int | None]
        """Tokens by example position (None: the example cannot be rendered)."""

    @dataclass
    class DetailRendered(Message):
        """The highlighted example's messages were rendered."""

        row: Row
        """The example."""
        messages: list[dict[str, Any]]
        """Its chat messages (the one rendering function's output)."""
        tokens: int | None
        """Their tokens in chat format."""

    @dataclass
    class ProblemsFound(Message):
        """The problem scan (dataset problems, gold SQL runs, JSONL validation) finished."""

        problems: dict[int, list[str]] = field(default_factory=dict)
        """Messages by example position (-1: problems of no single example)."""

    page: reactive[int] = reactive(0)
    """Current page within the filtered view."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.source: ExampleSource | None = None
        """The examples (None until opened)."""
        self.view: list[int] | None = None
        """Filtered example positions (None: every example)."""
        self.problems: dict[int, list[str]] | None = None
        """Problems by example position (None: scan still running)."""
        self.tokens: dict[int, int | None] = {}
        """Tokens counted so far by example position (None: cannot be rendered)."""
        self.renderer = ExampleRenderer()
        """Renders messages and counts tokens (schema cache, encoding)."""
        self.warnings: list[str] = []
        """Problems of no single example (a file that is not JSON), as prepare words them."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="dataset-filters", classes="filters"):
            yield Select[str]([], prompt="all databases", id="dataset-db", compact=True,
                              allow_blank=True)
            yield Input(placeholder="/ filter question or SQL", id="dataset-text", compact=True)
            yield Label("opening…", id="dataset-position")
        yield Static("", id="dataset-warnings")
        with Horizontal(id="dataset-body", classes="split"):
            table: DataTable[Any] = DataTable(id="dataset-table", cursor_type="row",
                                              zebra_stripes=True)
            yield table
            with VerticalScroll(id="dataset-detail", can_focus=True):
                yield Static("", id="dataset-detail-text")

    def on_mount(self) -> None:
        table = self.query_one("#dataset-table", DataTable)
        # Text labels: a str label is read as markup, which loads rich's emoji table (~20 ms).
        table.add_column(Text("#"), key="n", width=5)
        table.add_column(Text("database"), key="db", width=12)
        table.add_column(Text("question"), key="question", width=QUESTION_WIDTH)
        table.add_column(Text("tok"), key="tokens", width=5)
        table.add_column(Text("!"), key="problem", width=1)

    def after_first_frame(self) -> None:
        self.open_data(self.session.data)

    def focus_default(self) -> None:
        self.query_one("#dataset-table").focus()

    # ── opening ─────────────────────────────────────────────────────────────────────────

    @work(thread=True, exclusive=True, group="dataset-open", exit_on_error=False)
    def open_data(self, data: Path | None) -> None:
        """Open the folder or file and read the first page (indexing comes after)."""
        from tui.core.paths import demo_dir

        source = open_source(data or demo_dir())
        rows = source.rows(range(min(PAGE_SIZE, source.known_count())))
        self.post_message(self.Opened(source, rows))

    def on_dataset_preview_opened(self, message: Opened) -> None:
        self.source, self.view, self.problems, self.tokens = message.source, None, None, {}
        self.renderer.clear()
        self._show_warnings(message.source.warnings())
        self._fill_databases()
        self.post_message(self.PageLoaded(0, message.rows))
        self.scan_problems(message.source)

    def show_failure(self, failure: WorkFailed) -> None:
        if failure.operation == "open_data":
            self._show_warnings([])
            self.query_one("#dataset-position", Label).update("cannot open the dataset")
            self.query_one("#dataset-detail-text", Static).update(Text(failure.error,
                                                                       style="red"))
        super().show_failure(failure)

    def _fill_databases(self) -> None:
        if self.source is None:
            return
        select = self.query_one("#dataset-db", Select)
        value = select.value
        names = self.source.db_ids()
        select.set_options([(name, name) for name in names])
        if isinstance(value, str) and value in names:
            select.value = value

    @work(thread=True, exclusive=True, group="dataset-problems", exit_on_error=False)
    def scan_problems(self, source: ExampleSource) -> None:
        """Dataset problems, failing gold SQL and JSONL validation issues (slow: a worker)."""
        worker = get_current_worker()
        try:
            found = source.problems(self.renderer.model, lambda: worker.is_cancelled)
        except Exception as error:
            found = {-1: [f"problem scan failed: {error}"]}
        if not worker.is_cancelled:
            self.post_message(self.ProblemsFound(found))

    def _show_warnings(self, warnings: list[str]) -> None:
        self.warnings = warnings
        strip = self.query_one("#dataset-warnings", Static)
        strip.update(warnings_text(warnings))
        strip.display = bool(warnings)

    def on_dataset_preview_problems_found(self, message: ProblemsFound) -> None:
        self.problems = message.problems
        self._show_warnings(message.problems.get(-1, []))
        self._fill_databases()
        table = self.query_one("#dataset-table", DataTable)
        for key in table.rows:
            if key.value is not None and int(key.value) in self.problems:
                table.update_cell(key, "problem", Text("!", style="bold red"))
        self._show_position()
        self._show_detail_for_cursor()

    # ── pages ───────────────────────────────────────────────────────────────────────────

    def _view_length(self) -> int:
        source = self.source
        return len(self.view) if self.view is not None else source.known_count() if source else 0

    def _positions(self, page: int) -> list[int]:
        start = page * PAGE_SIZE
        if self.view is not None:
            return self.view[start:start + PAGE_SIZE]
        return list(range(start, min(start + PAGE_SIZE, self._view_length())))

    @work(thread=True, exclusive=True, group="dataset-page", exit_on_error=False)
    def load_page(self, page: int, cursor: int = 0) -> None:
        """Read one page of rows."""
        if self.source is not None:
            self.post_message(self.PageLoaded(page, self.source.rows(self._positions(page)),
                                              cursor))

    def on_dataset_preview_page_loaded(self, message: PageLoaded) -> None:
        table = self.query_one("#dataset-table", DataTable)
        table.clear()
        problems = self.problems or {}
        for row in message.rows:
            table.add_row(
                str(row.index + 1), row.db_id or "—", clip(row.question, QUESTION_WIDTH),
                tokens_cell(self.tokens[row.index]) if row.index in self.tokens else "…",
                Text("!", style="bold red") if row.index in problems else "",
                key=str(row.index))
        self.set_reactive(DatasetPreview.page, message.page)
        if message.rows:
            table.move_cursor(row=min(message.cursor, len(message.rows) - 1), animate=False)
        self._show_position()
        self._show_detail_for_cursor()
        self.count_tokens(message.rows)

    @work(thread=True, exclusive=True, group="dataset-tokens", exit_on_error=False)
    def count_tokens(self, rows: list[Row]) -> None:
        """Tokens of each example on the page (schema text is cached per database)."""
        worker = get_current_worker()
        counted: dict[int, int | None] = {}
        for row in rows:
            if worker.is_cancelled:
                return
            counted[row.index] = self.renderer.tokens(self.source, row)
        self.post_message(self.TokensCounted(counted))

    def on_dataset_preview_tokens_counted(self, message: TokensCounted) -> None:
        self.tokens.update(message.tokens)
        table = self.query_one("#dataset-table", DataTable)
        for index, tokens in message.tokens.items():
            if str(index) in table.rows:
                table.update_cell(str(index), "tokens", tokens_cell(tokens))

    def _show_position(self) -> None:
        table = self.query_one("#dataset-table", DataTable)
        current = self.page * PAGE_SIZE + (table.cursor_row + 1 if table.row_count else 0)
        label = self.source.label if self.source is not None else ""
        self.query_one("#dataset-position", Label).update(position_text(
            label, current, self._view_length(), self.page, PAGE_SIZE, self.problems,
            len(self.warnings)))

    def action_page(self, delta: int) -> None:
        """Go to the next or previous page."""
        pages = max(1, -(-self._view_length() // PAGE_SIZE))
        target = self.page + delta
        if 0 <= target < pages:
            self.load_page(target)

    # ── detail ──────────────────────────────────────────────────────────────────────────

    @on(DataTable.RowHighlighted, "#dataset-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_position()
        self._show_detail_for_cursor()

    def _show_detail_for_cursor(self) -> None:
        table = self.query_one("#dataset-table", DataTable)
        if not table.row_count or self.source is None:
            return
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        if key is not None:
            self.render_detail(int(key))

    @work(thread=True, exclusive=True, group="dataset-detail", exit_on_error=False)
    def render_detail(self, index: int) -> None:
        """Render one example's messages and count their tokens."""
        if self.source is None:
            return
        rows = self.source.rows([index])
        if rows:
            messages, tokens = self.renderer.render(self.source, rows[0])
            self.post_message(self.DetailRendered(rows[0], messages, tokens))

    def on_dataset_preview_detail_rendered(self, message: DetailRendered) -> None:
        problems = (self.problems or {}).get(message.row.index, [])
        self.query_one("#dataset-detail-text", Static).update(
            detail_renderable(message.row, message.messages, message.tokens, problems))

    # ── filters ─────────────────────────────────────────────────────────────────────────

    def action_filter_text(self) -> None:
        """Focus the text filter."""
        self.query_one("#dataset-text", Input).focus()

    def action_filter_database(self) -> None:
        """Open the database filter."""
        select = self.query_one("#dataset-db", Select)
        select.focus()
        select.expanded = True

    def action_clear_filters(self) -> None:
        """Clear both filters and return to the table."""
        self.query_one("#dataset-text", Input).value = ""
        self.query_one("#dataset-db", Select).clear()
        self.query_one("#dataset-table").focus()
        self._refilter()

    @on(Input.Submitted, "#dataset-text")
    def _text_submitted(self) -> None:
        self._refilter()
        self.query_one("#dataset-table").focus()

    @on(Input.Changed, "#dataset-text")
    @on(Select.Changed, "#dataset-db")
    def _filters_changed(self) -> None:
        self._refilter()

    def _refilter(self) -> None:
        value = self.query_one("#dataset-db", Select).value
        text = self.query_one("#dataset-text", Input).value.strip()
        db_id = value if isinstance(value, str) else None
        if self.source is not None:
            self.apply_filter(self.source, db_id, text)

    @work(thread=True, exclusive=True, group="dataset-filter", exit_on_error=False)
    def apply_filter(self, source: ExampleSource, db_id: str | None, text: str) -> None:
        """Find the matching examples (a scan of the file for a lazy JSONL)."""
        worker = get_current_worker()
        if db_id is None and not text:
            positions = None
        else:
            positions = source.matching(db_id, text, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.Filtered(positions))

    def on_dataset_preview_filtered(self, message: Filtered) -> None:
        self.view = message.positions
        self.load_page(0)

    # ── problems ────────────────────────────────────────────────────────────────────────

    def action_problem(self, direction: int) -> None:
        """Move to the next (1) or previous (-1) example that has a problem."""
        if not self.problems:
            self.notify("No problems found" if self.problems is not None
                        else "Still checking the dataset…", title="Dataset")
            return
        table = self.query_one("#dataset-table", DataTable)
        here = self.page * PAGE_SIZE + table.cursor_row
        order = self.view if self.view is not None else range(self._view_length())
        flagged = [i for i, position in enumerate(order) if position in self.problems]
        ahead = [i for i in flagged if (i > here if direction > 0 else i < here)]
        if not ahead:
            self.notify("No more problems in this direction", title="Dataset")
            return
        target = ahead[0] if direction > 0 else ahead[-1]
        page, cursor = divmod(target, PAGE_SIZE)
        if page == self.page:
            table.move_cursor(row=cursor)
        else:
            self.load_page(page, cursor)
        table.focus()

    def action_open_data(self) -> None:
        """Ask for a Spider folder or a JSONL file and open it."""
        from tui.screens.prompt import PromptScreen

        def opened(path: str | None) -> None:
            if path:
                self.session.data = Path(path).expanduser()
                self.open_data(self.session.data)

        current = str(self.session.data or "")
        self.app.push_screen(PromptScreen("Open a Spider folder or a JSONL file", value=current),
                             opened)
