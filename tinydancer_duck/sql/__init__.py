"""The SQL surface: *.sql files run in name order at connect()."""
