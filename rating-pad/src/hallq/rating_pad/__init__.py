"""The five-level rating pad at each window."""
