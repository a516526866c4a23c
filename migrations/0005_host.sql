-- Real hosts (--sysfs): the kernel's default domain type and the isolation warnings of each group,
-- and devices without an IOMMU group (group_id NULL: listed, never assignable).

ALTER TABLE groups ADD COLUMN type TEXT;
ALTER TABLE groups ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';

-- group_id loses NOT NULL. SQLite cannot drop a constraint in place, so the table is rebuilt as its
-- documentation prescribes (create, copy, drop, rename); migrations run with foreign keys off and
-- are checked with PRAGMA foreign_key_check before they commit (store/migrations.ts).
CREATE TABLE devices_new (
  id               TEXT PRIMARY KEY,
  kind             TEXT NOT NULL CHECK (kind IN ('pci', 'vf', 'mdev', 'vdpa')),
  group_id         INTEGER REFERENCES groups (id),
  parent_id        TEXT REFERENCES devices (id),
  driver           TEXT NOT NULL,
  label            TEXT,
  pasid_capable    INTEGER NOT NULL DEFAULT 0 CHECK (pasid_capable IN (0, 1)),
  reset_group      TEXT,
  vendor           TEXT,
  device           TEXT,
  class            TEXT,
  description      TEXT,
  reserved_regions TEXT NOT NULL DEFAULT '[]',
  -- virtual devices always have a group: their parent isolates them
  CHECK (group_id IS NOT NULL OR kind IN ('pci', 'vf'))
) STRICT;
INSERT INTO devices_new (id, kind, group_id, parent_id, driver, label, pasid_capable, reset_group, vendor, device, class, description, reserved_regions)
  SELECT id, kind, group_id, parent_id, driver, label, pasid_capable, reset_group, vendor, device, class, description, reserved_regions FROM devices;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices;
CREATE INDEX devices_by_group ON devices (group_id);
CREATE INDEX devices_by_parent ON devices (parent_id);
