-- A packed copy of the mappings table, written at a clean stop so the next start reads a few large
-- blobs instead of a million rows (store/mapping-snapshot.ts has the format). It is a cache, exact by
-- construction: the triggers below empty it in the same transaction as any change to the mappings
-- table, by ioasd or by any other SQLite client, so a copy that is present always equals the table.

CREATE TABLE mapping_snapshot (
  part INTEGER PRIMARY KEY,   -- 0, 1, 2, ... in (ioas_id, iova) order
  rows INTEGER NOT NULL,
  data BLOB NOT NULL
) STRICT;

CREATE TRIGGER mapping_snapshot_stale_on_insert AFTER INSERT ON mappings
  WHEN EXISTS (SELECT 1 FROM mapping_snapshot) BEGIN DELETE FROM mapping_snapshot; END;
CREATE TRIGGER mapping_snapshot_stale_on_update AFTER UPDATE ON mappings
  WHEN EXISTS (SELECT 1 FROM mapping_snapshot) BEGIN DELETE FROM mapping_snapshot; END;
CREATE TRIGGER mapping_snapshot_stale_on_delete AFTER DELETE ON mappings
  WHEN EXISTS (SELECT 1 FROM mapping_snapshot) BEGIN DELETE FROM mapping_snapshot; END;
