"""One pane per tab; each reads through `Services` and posts messages up."""
