"""How the playground asks a model: the provider's client or another endpoint's, its prompt."""

from __future__ import annotations

import asyncio
from typing import Any

from tui.core.inference import Answer
from tui.core.playground import Database, ModelChoice
from tui.core.schema import SchemaCache
from tui.widgets.pane import Session


class ModelCaller:
    """Asks any model a question with the prompt it was trained with (or the default one)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        """Gives the provider's client."""
        self.schemas = SchemaCache()
        """Schema text per database, computed once."""
        self._endpoints: dict[tuple[str, str | None], Any] = {}

    async def __call__(self, choice: ModelChoice, database: Database,
                       question: str) -> tuple[Answer, bool]:
        """The answer, and True when the model's own training template built the prompt."""
        from tui.core.inference import InferenceError, ask_for_sql
        from tui.core.playground import template_for
        from tui.core.prompts import messages_for

        client, model, provider = await self._client_for(choice)
        template, own = await asyncio.to_thread(template_for, choice.name, provider)
        messages = await asyncio.to_thread(messages_for, template, self.schemas,
                                           database.path, question)
        try:
            return await ask_for_sql(client, model, messages), own
        except InferenceError as error:
            # Reasoning models refuse any temperature but the default one.
            if error.kind != "bad_request" or "temperature" not in error.message:
                raise
        return await ask_for_sql(client, model, messages, temperature=None), own

    async def provider_models(self) -> tuple[list[ModelChoice], str | None]:
        """The provider's chat models, fine-tuned first, with its jobs' checkpoints; or no
        models and why (the text never holds a key)."""
        from tui.core.jobs import JobService
        from tui.core.playground import provider_models
        from tui.core.providers import redact

        try:
            client = await self.session.client()
            connection = self.session.connection
            resolved = connection.resolved if connection is not None else None
            jobs = (JobService(client, kind=resolved.kind, capabilities=resolved.capabilities)
                    if resolved is not None else JobService(client))
            return await provider_models(client, jobs), None
        except Exception as error:  # any failure is shown in the pane, never raised
            return [], redact(str(error)) or type(error).__name__

    async def _client_for(self, choice: ModelChoice) -> tuple[Any, str, str | None]:
        """(client, model name to send, provider name for the template lookup)."""
        if choice.base_url is None:
            client = await self.session.client()
            connection = self.session.connection
            resolved = connection.resolved if connection is not None else None
            model = resolved.deployment_for(choice.name) if resolved is not None else choice.name
            return client, model, connection.name if connection is not None else None
        key = (choice.base_url, choice.key_env)
        if key not in self._endpoints:
            from tui.core.playground import endpoint_client

            self._endpoints[key] = await asyncio.to_thread(endpoint_client, choice)
        return self._endpoints[key], choice.name, None

    async def close(self) -> None:
        """Close the clients made for other endpoints."""
        clients, self._endpoints = list(self._endpoints.values()), {}
        for client in clients:
            await client.close()
