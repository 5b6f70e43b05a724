"""Provider clients for emnify and Eseye. No Home Assistant imports below this package."""
