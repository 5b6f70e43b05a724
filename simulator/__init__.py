"""Test doubles speaking the emnify and Eseye wire formats (no Home Assistant imports)."""
