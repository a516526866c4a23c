-- Operating ioasd: the event log behind GET /v1/events and the Idempotency-Key records.

-- One row per committed change, written in the change's own transaction. seq only grows
-- (AUTOINCREMENT: never reused, even after retention removed every row), so a client resumes with
-- the last seq it saw, across restarts.
CREATE TABLE events (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  at           TEXT NOT NULL,
  type         TEXT NOT NULL,
  object_kind  TEXT NOT NULL,
  object_id    TEXT NOT NULL,
  -- who may see it: 'owner' (principal_id and admins), 'inventory' (everyone; an owner in the
  -- state is shown as "other" to anyone but principal_id), 'admin'
  scope        TEXT NOT NULL CHECK (scope IN ('owner', 'inventory', 'admin')),
  principal_id TEXT,
  context_id   TEXT,
  state        TEXT
) STRICT;

-- The first answer to a request carrying an Idempotency-Key, per principal, with a digest of
-- method, path and body; a retry with the same key and digest gets it back.
CREATE TABLE idempotency (
  principal_id TEXT NOT NULL,
  key          TEXT NOT NULL,
  digest       TEXT NOT NULL,
  status       INTEGER NOT NULL,
  body         TEXT,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (principal_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_by_age ON idempotency (created_at);
