"""Spider-format data in, chat JSONL out: datasets, schema text, the one prompt, prepare."""
