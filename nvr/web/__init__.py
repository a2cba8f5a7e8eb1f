"""HTTP front door: FastAPI app assembly, health and JSON API."""
