"""Tokens and money: offline encodings, chat counters, prices, the fit to a token limit."""
