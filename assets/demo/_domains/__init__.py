"""Domain modules of the demo dataset: each has SCHEMA, populate(rng), TRAIN and DEV."""
