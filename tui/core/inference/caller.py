"""Ask any model a question about a database with the prompt it was trained with."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from tui.core.data.schema import SchemaCache

if TYPE_CHECKING:  # the SDK and the inference core load with the first question
    from tui.core.finetune.lineage import PromptChoice
    from tui.core.inference.ask import Answer
    from tui.core.inference.playground import Database, ModelChoice


class ProviderSession(Protocol):
    """The app's way to its provider (the panes' Session): a client and what it connects to."""

    connection: Any
    """Its connection (``name``, ``resolved``), None until ``client()`` has returned."""

    async def client(self) -> Any:
        """The provider's ``openai.AsyncOpenAI`` (connecting when needed)."""
        ...

    async def jobs(self) -> Any:
        """The provider's ``JobService`` (connecting when needed)."""
        ...


class ModelCaller:
    """Asks the provider's models, or another endpoint's, with each model's training prompt."""

    def __init__(self, session: ProviderSession) -> None:
        self.session = session
        """Gives the provider's client."""
        self.schemas = SchemaCache()
        """Schema text per database, computed once."""
        self._endpoints: dict[tuple[str, str | None], Any] = {}
        self._prompts: dict[tuple[str, str | None, str | None], PromptChoice] = {}

    async def __call__(self, choice: ModelChoice, database: Database,
                       question: str) -> tuple[Answer, PromptChoice]:
        """The answer, and the template that built the prompt (with a warning when it is not
        known to be the model's own)."""
        from tui.core.data.prompts import messages_for
        from tui.core.inference.ask import InferenceError, ask_for_sql

        client, model, provider = await self._client_for(choice)
        prompt = await self.prompt(choice, client, provider)
        messages = await asyncio.to_thread(messages_for, prompt.template, self.schemas,
                                           database.path, question)
        try:
            return await ask_for_sql(client, model, messages), prompt
        except InferenceError as error:
            # Reasoning models refuse any temperature but the default one.
            if error.kind != "bad_request" or "temperature" not in error.message:
                raise
        return await ask_for_sql(client, model, messages, temperature=None), prompt

    async def prompt(self, choice: ModelChoice, client: Any,
                     provider: str | None) -> PromptChoice:
        """prompt_for the model, once per model and provider (it may list the provider's jobs)."""
        from tui.core.finetune.lineage import prompt_for

        key = (choice.name, choice.base_url, provider)
        if key not in self._prompts:
            self._prompts[key] = await prompt_for(choice.name, provider, client=client)
        return self._prompts[key]

    async def provider_models(self) -> tuple[list[ModelChoice], str | None]:
        """The provider's chat models, fine-tuned first, with its jobs' checkpoints; or no
        models and why (the text never holds a key)."""
        from tui.core.inference.playground import provider_models
        from tui.core.provider.providers import redact

        try:
            jobs = await self.session.jobs()
            return await provider_models(await self.session.client(), jobs), None
        except Exception as error:  # any failure is shown in the pane, never raised
            return [], redact(str(error)) or type(error).__name__

    async def _client_for(self, choice: ModelChoice) -> tuple[Any, str, str | None]:
        """(client, model name to send, provider name for the template lookup)."""
        if choice.base_url is None:
            client = await self.session.client()
            connection = self.session.connection  # set: client() raised otherwise
            return client, connection.resolved.deployment_for(choice.name), connection.name
        key = (choice.base_url, choice.key_env)
        if key not in self._endpoints:
            from tui.core.inference.playground import endpoint_client

            self._endpoints[key] = await asyncio.to_thread(endpoint_client, choice)
        return self._endpoints[key], choice.name, None

    async def close(self) -> None:
        """Close the clients made for other endpoints."""
        clients, self._endpoints = list(self._endpoints.values()), {}
        for client in clients:
            await client.close()
