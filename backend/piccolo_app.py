"""The portal as a Piccolo app: its tables and committed migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

APP_CONFIG = AppConfig(
    app_name="backend",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=table_finder(modules=["backend.tables"], exclude_imported=False),
    migration_dependencies=[],
    commands=[],
)
