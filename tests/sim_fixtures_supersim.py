"""Super SIM simulator fixtures (being written)."""
