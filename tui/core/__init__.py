"""Plain, typed services, one subpackage per concern (data, budget, provider, finetune, sql,
inference, evaluation); paths, history and models serve them all."""
