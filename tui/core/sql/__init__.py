"""Model-written SQL on SQLite: opened read-only, executed under limits, results compared."""
