-- Contexts, IOAS and DMA mappings.
-- u64 values in INTEGER columns are stored offset by -2^63 (value - 2^63 as a signed 64-bit integer):
-- SQLite integers are signed, and the offset keeps their order equal to the unsigned order, so the
-- primary key index hands mappings back sorted by address at start-up without any text parsing.

CREATE TABLE contexts (
  id            TEXT PRIMARY KEY,
  principal_id  TEXT NOT NULL REFERENCES principals (id),
  name          TEXT,
  lease_seconds INTEGER,
  expires_at    INTEGER,           -- epoch milliseconds
  created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX contexts_by_principal ON contexts (principal_id);

CREATE TABLE ioas (
  id             INTEGER PRIMARY KEY,
  context_id     TEXT NOT NULL REFERENCES contexts (id),
  allowed_ranges TEXT NOT NULL DEFAULT '[]',
  created_at     TEXT NOT NULL
) STRICT;
CREATE INDEX ioas_by_context ON ioas (context_id);

-- A mapping and the pinned pages behind it: a map makes new pages (charged to maxPinnedBytes once),
-- a copy shares its source's. The pages' size and writability are kept on every mapping that uses
-- them, so there is no pages table to write, index or join: a map is one row here.
CREATE TABLE mappings (
  ioas_id      INTEGER NOT NULL REFERENCES ioas (id),
  iova         INTEGER NOT NULL,   -- u64, offset-encoded
  length       INTEGER NOT NULL,   -- u64, offset-encoded
  user_address INTEGER NOT NULL,   -- u64, offset-encoded
  flags        INTEGER NOT NULL,   -- 1 read, 2 write, 4 pages writable
  pages_id     INTEGER NOT NULL,
  pages_bytes  INTEGER,            -- u64, offset-encoded; NULL: the same as length (not a copy)
  PRIMARY KEY (ioas_id, iova)
) STRICT, WITHOUT ROWID;
