"""One import for the publishing API: atomic snapshot sets (``atomic``), validation (``prepare``), catalog.

Kept so callers written against the single-module layout keep working; new code may import the
modules directly.
"""

from publishing.atomic import (
    CURRENT_DIR,
    LOCK_NAME,
    MANIFEST_NAME,
    PART_NAME,
    SNAPSHOTS_DIR,
    PublishedTable,
    PublishReport,
    SnapshotSet,
    current_path,
    current_set,
    history_path,
    publish,
    publish_page,
    published_snapshots,
    read_current,
    read_current_set,
    write_text_atomic,
)
from publishing.catalog import CATALOG_NAME, STORAGE_VERSION, build_catalog, connect_catalog, storage_version
from publishing.prepare import PARTITION_KEY, PublishError, history_table, prepare_table

__all__ = [
    "CATALOG_NAME",
    "CURRENT_DIR",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "PARTITION_KEY",
    "PART_NAME",
    "SNAPSHOTS_DIR",
    "STORAGE_VERSION",
    "PublishError",
    "PublishReport",
    "PublishedTable",
    "SnapshotSet",
    "build_catalog",
    "connect_catalog",
    "current_path",
    "current_set",
    "history_path",
    "history_table",
    "prepare_table",
    "publish",
    "publish_page",
    "published_snapshots",
    "read_current",
    "read_current_set",
    "storage_version",
    "write_text_atomic",
]
