"""Database layer: SQLAlchemy models, engine setup and migrations glue."""
