"""How the local backend runs each step type: one module per type, found through ``STEP_RUNNERS``."""
