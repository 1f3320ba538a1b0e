"""One module per step kind: ``build(spec, builder)`` returns the SDK step (registered in ``STEP_BUILDERS``)."""
