"""The HTTP service (FastAPI, "bigger applications" layout): `create_app` and its settings."""

from driftrec.serving.app import create_app
from driftrec.serving.settings import Settings

__all__ = ["Settings", "create_app"]
