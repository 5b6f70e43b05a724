"""1NCE simulator fixtures (being written)."""
