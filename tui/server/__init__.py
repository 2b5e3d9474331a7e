"""sqltune's local OpenAI-compatible fine-tuning server."""
