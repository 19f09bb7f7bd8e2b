"""For the `piccolo` command run from the repository root; the real settings are in backend/."""

from backend.piccolo_conf import APP_REGISTRY, DB

__all__ = ["APP_REGISTRY", "DB"]
