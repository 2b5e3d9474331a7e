"""Parts of the jobs pane: the loss chart and the job detail with its live events."""
