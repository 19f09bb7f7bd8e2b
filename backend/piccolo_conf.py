"""Piccolo's entry point: the engine comes from DATABASE_URL (see backend/db.py)."""

import os

from piccolo.conf.apps import AppRegistry

from backend.config import DEFAULT_DATABASE_URL
from backend.db import create_engine

DB = create_engine(os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)

APP_REGISTRY = AppRegistry(apps=["backend.piccolo_app"])
