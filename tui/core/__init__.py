"""Plain, typed services: datasets, prompts, tokens, budgets, providers, jobs, SQL, evaluation."""
