"""One module per step kind: the plain spec a step operator translates itself into."""
