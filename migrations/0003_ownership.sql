-- Ownership under both policies: group-first group holds, container membership and device opens;
-- device-first bindings, attachments, PASID attachments and hardware page tables (hwpts).

-- group-first: a context holds a group open; ioas_id is the container it joined (NULL: none yet).
CREATE TABLE group_holds (
  group_id   INTEGER PRIMARY KEY REFERENCES groups (id),
  context_id TEXT NOT NULL REFERENCES contexts (id),
  ioas_id    INTEGER REFERENCES ioas (id)
) STRICT;

CREATE TABLE device_opens (
  device_id TEXT PRIMARY KEY REFERENCES devices (id),
  group_id  INTEGER NOT NULL REFERENCES group_holds (group_id),
  count     INTEGER NOT NULL CHECK (count > 0)
) STRICT;

-- device-first: hardware page tables; ids share the IOASID space with ioas.
CREATE TABLE hwpts (
  id             INTEGER PRIMARY KEY,
  context_id     TEXT NOT NULL REFERENCES contexts (id),
  kind           TEXT NOT NULL CHECK (kind IN ('paging', 'nested')),
  ioas_id        INTEGER NOT NULL REFERENCES ioas (id),
  parent_id      INTEGER REFERENCES hwpts (id),
  auto           INTEGER NOT NULL CHECK (auto IN (0, 1)),
  nest_parent    INTEGER NOT NULL CHECK (nest_parent IN (0, 1)),
  pasid          INTEGER NOT NULL CHECK (pasid IN (0, 1)),
  dirty_tracking INTEGER NOT NULL CHECK (dirty_tracking IN (0, 1)),
  data           TEXT,
  created_at     TEXT NOT NULL
) STRICT;

-- hwpt_id: the page table a hardware device is attached to through its RID; access_ioas_id: the
-- IOAS a virtual device (mdev, vdpa) is attached to, through its parent's emulated access.
CREATE TABLE bindings (
  device_id      TEXT PRIMARY KEY REFERENCES devices (id),
  context_id     TEXT NOT NULL REFERENCES contexts (id),
  hwpt_id        INTEGER REFERENCES hwpts (id),
  access_ioas_id INTEGER REFERENCES ioas (id)
) STRICT;

CREATE TABLE pasid_attachments (
  device_id TEXT NOT NULL REFERENCES bindings (device_id),
  pasid     INTEGER NOT NULL,
  hwpt_id   INTEGER NOT NULL REFERENCES hwpts (id),
  PRIMARY KEY (device_id, pasid)
) STRICT;
