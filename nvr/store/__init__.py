"""The track-based segment store: append-only media files indexed in the database."""
