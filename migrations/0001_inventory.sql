-- Inventory, principals, settings and the audit trail.
-- u64 addresses are stored as 16-digit lowercase hex text so that text order is numeric order.

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE groups (
  id   INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('iommu', 'virtual'))
) STRICT;

CREATE TABLE devices (
  id               TEXT PRIMARY KEY,
  kind             TEXT NOT NULL CHECK (kind IN ('pci', 'vf', 'mdev', 'vdpa')),
  group_id         INTEGER NOT NULL REFERENCES groups (id),
  parent_id        TEXT REFERENCES devices (id),
  driver           TEXT NOT NULL,
  label            TEXT,
  pasid_capable    INTEGER NOT NULL DEFAULT 0 CHECK (pasid_capable IN (0, 1)),
  reset_group      TEXT,
  vendor           TEXT,
  device           TEXT,
  class            TEXT,
  description      TEXT,
  reserved_regions TEXT NOT NULL DEFAULT '[]'
) STRICT;
CREATE INDEX devices_by_group ON devices (group_id);
CREATE INDEX devices_by_parent ON devices (parent_id);

CREATE TABLE principals (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  role       TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  clearances TEXT NOT NULL DEFAULT '[]',
  quotas     TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
) STRICT;

CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,        -- rowid: grows with every row, as nothing is ever deleted
  at        TEXT NOT NULL,
  actor     TEXT,
  action    TEXT NOT NULL,
  target    TEXT NOT NULL,
  detail    TEXT
) STRICT;
