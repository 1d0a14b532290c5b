"""DuckDB warehouse: connections and the write lock, bookkeeping schema, landing tables."""
