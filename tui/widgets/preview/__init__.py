"""Parts of the dataset preview pane: the example sources it pages through."""
