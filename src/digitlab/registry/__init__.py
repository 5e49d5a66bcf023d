"""The model registry: versioned model folders, their copy in PostgreSQL, which one serves."""
