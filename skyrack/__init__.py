"""The composition root: the one place that knows every layer. It turns a board
definition into a running satellite and hosts the `skyrack` command line."""
