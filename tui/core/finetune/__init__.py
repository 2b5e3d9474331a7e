"""Fine-tuning on a provider: files, jobs, the event follower, the form, prompt lineage."""
