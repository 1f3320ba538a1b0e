"""What a step task does at run time for each step kind, found by the key of the step's ``Metadata``."""
