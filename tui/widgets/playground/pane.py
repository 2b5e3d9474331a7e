"""The playground pane: ask a model a question, run its SQL read-only, compare two models."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from tui.core.inference.caller import ModelCaller
from tui.core.inference.playground import (
    Asked,
    Database,
    ModelChoice,
    QuestionHistory,
    Workspace,
    automatic_choice,
    pretty_sql,
)
from tui.messages import JobEnded
from tui.widgets.failures import WorkFailed
from tui.widgets.pane import Pane, is_text_field
from tui.widgets.playground.answer import AnswerView, SideBySide
from tui.widgets.playground.messages import ModelsListed, WorkspaceOpened
from tui.widgets.playground.pickers import ChoicePicker, ModelPicker, database_items
from tui.widgets.playground.question import QuestionInput

if TYPE_CHECKING:
    from tui.core.session import Session


class PlaygroundPane(Pane):
    """A question becomes the model's training prompt; its SQL runs read-only and is scored."""

    PANE_ID = "playground"
    PANE_TITLE = "Playground"
    DEFAULT_CSS = """
    PlaygroundPane #pg-ask-row { height: 1; }
    PlaygroundPane #pg-db { width: auto; max-width: 30; padding: 0 1; background: $panel; }
    PlaygroundPane #pg-question { width: 1fr; }
    PlaygroundPane #pg-gold { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    Screen.-wide PlaygroundPane #pg-gold { max-height: 6; }
    PlaygroundPane #pg-gold.-none { display: none; }
    PlaygroundPane #pg-sides { height: 1fr; }
    PlaygroundPane #pg-side-b { border-left: vkey $primary-darken-2; }
    PlaygroundPane #pg-side-b.-hidden { display: none; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("slash", "focus_question", "Question", id="playground.focus_question",
                tooltip="Type in the question field (escape leaves it, enter asks)"),
        Binding("ctrl+n", "ask", "Ask", id="playground.ask", show=False,
                tooltip="Ask the model(s) the question (enter in the question field too)"),
        Binding("ctrl+r", "run_sql", "Run SQL", id="playground.run",
                tooltip="Run the edited SQL read-only (the focused side, else every side)"),
        Binding("ctrl+o", "pick_model", "Model", id="playground.model",
                tooltip="Pick the focused side's model: tuned, checkpoint, base, or any "
                        "OpenAI-compatible endpoint"),
        Binding("ctrl+b", "pick_database", "DB", id="playground.database",
                tooltip="Pick the database questions are asked about"),
        Binding("ctrl+g", "pick_question", "Dev Q", id="playground.question",
                tooltip="Ask a question of the dataset's dev split: shows gold SQL and a verdict"),
        Binding("ctrl+t", "compare", "Compare", id="playground.compare",
                tooltip="Ask a second model side by side (again: hide it)"),
        Binding("ctrl+l", "history", "History", id="playground.history",
                tooltip="Recall an earlier question with its SQL"),
        Binding("ctrl+f", "format_sql", "Format SQL", id="playground.format", show=False,
                tooltip="Lay out the focused side's SQL (sqlglot)"),
        Binding("escape", "cancel", "Cancel", id="playground.cancel",
                tooltip="Stop the model call and the query that are running"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.workspace: Workspace | None = None
        """Databases and dev questions of the dataset."""
        self.database: Database | None = None
        """Where questions are asked and SQL runs."""
        self.models: list[ModelChoice] = []
        """The provider's models as last listed."""
        self.models_loaded = False
        """True once the provider's models were listed (or failed to be)."""
        self.models_error: str | None = None
        """Why the models could not be listed last time."""
        self._auto_choice: ModelChoice | None = None
        """The model this pane chose itself (a model the user picks is never replaced)."""
        self._just_tuned: str | None = None
        """A model a job just produced, to offer once it is listed."""
        self.history: list[Asked] = []
        """Questions asked, newest first."""
        self.gold_question: tuple[str, str, str] | None = None
        """(db_id, question, gold SQL) of the dataset question in the field, if any."""
        self.ask_model = ModelCaller(session)
        """Asks a side's model (the provider's client or another endpoint's)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="pg-ask-row"):
            yield Label("no database", id="pg-db")
            yield QuestionInput(lambda: [entry.question for entry in self.history],
                                placeholder="type a question, enter asks · ↑ earlier ones · "
                                            "esc leaves",
                                id="pg-question", compact=True)
        yield Static("", id="pg-gold", classes="-none")
        yield SideBySide(id="pg-sides")

    def after_first_frame(self) -> None:
        self.open_workspace()

    async def on_unmount(self) -> None:
        for view in self.query(AnswerView):
            view.close()
        await self.ask_model.close()

    def focus_default(self) -> None:
        self.query_one("#pg-question", Input).focus()

    def action_focus_question(self) -> None:
        """Type in the question field."""
        self.focus_default()

    def main_widget(self) -> Widget | None:
        """The rows of the side being edited (the left side's from the question)."""
        return (self.pair.holding(self.app.focused) or self.pair.a).table

    def escape_is_mine(self) -> bool:
        """While a side asks or runs, escape stops it even from a text field."""
        return any(view.busy for view in self.query(AnswerView))

    @property
    def pair(self) -> SideBySide:
        """The left side and the comparison side."""
        return self.query_one(SideBySide)

    # ── loading ─────────────────────────────────────────────────────────────────────────

    @work(thread=True, exclusive=True, group="pg-workspace", exit_on_error=False)
    def open_workspace(self) -> None:
        """Find the databases and dev questions, and read the question history."""
        from tui.core.inference.playground import PlaygroundError, open_workspace

        history = QuestionHistory().load()
        try:
            workspace = open_workspace(self.session.data)
        except (PlaygroundError, OSError) as error:
            self.post_message(WorkspaceOpened(None, str(error), history))
            return
        self.post_message(WorkspaceOpened(workspace, None, history))

    def on_workspace_opened(self, message: WorkspaceOpened) -> None:
        self.workspace, self.history = message.workspace, message.history
        if message.workspace is None:
            self.query_one("#pg-db", Label).update(Text("no database", style="red"))
            self.pair.a.note(Text(message.error or "no databases", style="red"))
            return
        questions = message.workspace.questions
        first = message.workspace.database(questions[0].db_id) if questions else None
        self._set_database(first or message.workspace.databases[0])

    def provider_changed(self) -> None:
        self.pair.forget_provider_models()
        self.list_models()

    def session_changed(self, fact: Message) -> None:
        if isinstance(fact, JobEnded):
            self._just_tuned = fact.fine_tuned_model
            self.list_models()  # a newly tuned model (and its checkpoints) appears

    @work(exclusive=True, group="pg-models", exit_on_error=False)
    async def list_models(self) -> None:
        """List the provider's chat models and its jobs' checkpoints."""
        self.post_message(ModelsListed(*await self.ask_model.provider_models()))

    def on_models_listed(self, message: ModelsListed) -> None:
        self.models_loaded, self.models_error = True, message.error
        if message.error is not None:  # shown where it matters (no toast over other panes)
            if self.pair.a.choice is None:
                self.pair.a.note(Text(f"cannot list models: {message.error}", style="red"))
            return
        self.models = message.models
        side = self.pair.a
        choice = automatic_choice(message.models, side.choice, self._auto_choice,
                                  self._just_tuned)
        if choice is not None and choice != side.choice:
            side.set_choice(choice)
            self._auto_choice, self._just_tuned = choice, None

    # ── database and questions ──────────────────────────────────────────────────────────

    def _set_database(self, database: Database) -> None:
        self.database = database
        self.query_one("#pg-db", Label).update(database.db_id)
        for view in self.query(AnswerView):
            view.set_database(database)
        self._show_gold()

    def action_pick_database(self) -> None:
        """Pick the database from the dataset."""
        if self.workspace is None:
            return
        databases = self.workspace.databases
        items = database_items(self.workspace)
        current = databases.index(self.database) if self.database in databases else None

        def picked(index: int | None) -> None:
            if index is not None:
                self._set_database(databases[index])
            self.focus_default()

        self.app.push_screen(ChoicePicker("Database (enter picks, esc keeps)", items,
                                          selected=current), picked)

    def action_pick_question(self) -> None:
        """Pick a question of the dev split and ask it."""
        if self.workspace is None:
            return
        questions = self.workspace.questions
        if not questions:
            self.notify("this dataset has no dev questions", title="Playground")
            return
        items = [Text.assemble((f"{e.db_id} ", "dim"), e.question) for e in questions]

        def picked(index: int | None) -> None:
            self.focus_default()
            if index is None or self.workspace is None:
                return
            example = questions[index]
            database = self.workspace.database(example.db_id)
            if database is not None:
                self._set_database(database)
            self.gold_question = (example.db_id, example.question, example.query)
            self.query_one("#pg-question", Input).value = example.question
            self._show_gold()
            self.action_ask()

        self.app.push_screen(ChoicePicker(
            f"{self.workspace.split} questions (type to filter, enter asks)", items), picked)

    def current_gold(self) -> str | None:
        """The gold SQL when the field holds a dataset question about the current database."""
        question = self.query_one("#pg-question", Input).value.strip()
        if self.database is None:
            return None
        known = [self.gold_question] if self.gold_question else []
        known += [(e.db_id, e.question, e.gold) for e in self.history if e.gold]
        return next((gold for db_id, asked, gold in known
                     if (db_id, asked.strip()) == (self.database.db_id, question)), None)

    def _show_gold(self) -> None:
        gold = self.current_gold()
        note = self.query_one("#pg-gold", Static)
        note.set_class(gold is None, "-none")
        if gold is not None:
            note.update(Text.assemble(("gold ", "bold"), " ".join(gold.split())))

    @on(Input.Changed, "#pg-question")
    def _question_changed(self) -> None:
        self._show_gold()

    # ── asking and running ──────────────────────────────────────────────────────────────

    @on(Input.Submitted, "#pg-question")
    def _question_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            event.prevent_default()  # nothing asked: the field keeps the focus
        self.query_one(QuestionInput).restart_walk()
        self.action_ask()

    def action_ask(self) -> None:
        """Ask every side's model the question in the field."""
        question = self.query_one("#pg-question", Input).value.strip()
        if not question:
            self.notify("type a question first (or ctrl+g for a dev question)",
                        title="Playground", severity="warning")
            self.focus_default()
            return
        if self.database is None:
            self.notify("no database to ask about", title="Playground", severity="error")
            return
        if self.pair.a.choice is None:
            self._pick_model_for(self.pair.a, then_ask=True)
            return
        gold = self.current_gold()
        for view in self.pair.shown():
            view.ask(self.ask_model, question, gold)
        self.refresh_bindings()

    def on_answer_view_answered(self, message: AnswerView.Answered) -> None:
        view = message.view
        if view is not self.pair.a or view.database is None or view.choice is None:
            return
        entry = Asked(question=message.question, db_id=view.database.db_id,
                      model=view.choice.label, sql=message.answer.sql, gold=message.gold)
        self.history.insert(0, entry)
        self.run_worker(partial(QuestionHistory().add, entry), thread=True,
                        group="pg-history", exit_on_error=False)

    @on(AnswerView.Ran)
    @on(WorkFailed)
    def _side_finished(self) -> None:
        self.refresh_bindings()

    def action_run_sql(self) -> None:
        """Run the edited SQL: the focused side's, or every side's."""
        focused = self.pair.holding(self.app.focused)
        gold = self.current_gold()
        for view in [focused] if focused is not None else self.pair.shown():
            if view.editor.text.strip():
                view.run(gold)
        self.refresh_bindings()

    def action_format_sql(self) -> None:
        """Lay out the focused side's SQL."""
        view = self.pair.holding(self.app.focused) or self.pair.a
        view.editor.load_text(pretty_sql(view.editor.text))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.is_mounted and any(view.busy for view in self.query(AnswerView))
        if action == "focus_question":  # a text field types "/" (Textual lists it regardless)
            return not is_text_field(self.app.focused)
        return True

    def action_cancel(self) -> None:
        """Stop what the sides are doing."""
        for view in self.query(AnswerView):
            view.cancel()
        self.refresh_bindings()

    # ── models and comparison ───────────────────────────────────────────────────────────

    def action_pick_model(self) -> None:
        """Pick the model of the focused side (the left one otherwise)."""
        self._pick_model_for(self.pair.holding(self.app.focused) or self.pair.a)

    def _pick_model_for(self, view: AnswerView, *, then_ask: bool = False,
                        show: bool = False) -> None:
        title = ("Compare with (enter picks, esc cancels)" if show else
                 f"Model for the {'left' if view is self.pair.a else 'right'} side (enter picks)")

        def picked(choice: ModelChoice | None) -> None:
            self.focus_default()
            if choice is None:
                return
            view.set_choice(choice)
            if view is self.pair.a:
                self._auto_choice = None  # the user's pick: a newly tuned model won't replace it
            if show:
                self.pair.set_comparing(True)
                view.set_database(self.database)
                question = self.query_one("#pg-question", Input).value.strip()
                if question and self.pair.a.answer is not None:
                    view.ask(self.ask_model, question, self.current_gold())
            if then_ask:
                self.action_ask()
            self.refresh_bindings()

        self.app.push_screen(ModelPicker(title, self.models, view.choice, error=self.models_error,
                                         loading=not self.models_loaded), picked)

    def action_compare(self) -> None:
        """Show a second model side by side (pick it first); hide it when shown."""
        if self.pair.comparing:
            self.pair.b.cancel()
            self.pair.set_comparing(False)
            self.focus_default()
            return
        self._pick_model_for(self.pair.b, show=True)

    # ── history ─────────────────────────────────────────────────────────────────────────

    def action_history(self) -> None:
        """Recall an earlier question: its database, text, gold and SQL (run again)."""
        if not self.history:
            self.notify("no question asked yet", title="Playground")
            return
        entries = list(self.history)
        items = [Text.assemble(entry.question, (f"  {entry.db_id} · {entry.model}", "dim"))
                 for entry in entries]

        def picked(index: int | None) -> None:
            self.focus_default()
            if index is not None:
                self.recall(entries[index])

        self.app.push_screen(ChoicePicker("Earlier questions, newest first (enter recalls)",
                                          items), picked)

    def recall(self, entry: Asked) -> None:
        """Put an earlier question back (database, text, gold) and run its SQL again."""
        database = self.workspace.database(entry.db_id) if self.workspace else None
        if database is None:
            self.notify(f"database {entry.db_id} is not in this dataset", title="Playground",
                        severity="warning")
            return
        self._set_database(database)
        self.gold_question = (entry.db_id, entry.question, entry.gold) if entry.gold else None
        self.query_one("#pg-question", Input).value = entry.question
        self._show_gold()
        view = self.pair.a
        view.editor.load_text(pretty_sql(entry.sql))
        view.set_title(f"recalled: {entry.model}")
        view.run(self.current_gold())
        self.refresh_bindings()

