"""Execution accuracy over a split: the runner, Spider's hardness, the report, saved runs."""
