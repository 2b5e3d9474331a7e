"""Asking a model for SQL: the call, with its training prompt; the playground's models, runs."""
