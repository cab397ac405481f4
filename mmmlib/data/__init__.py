"""Data intake: read a table, detect its columns, validate it, and build the dataset the model fits."""
