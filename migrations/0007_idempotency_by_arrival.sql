-- The idempotency table becomes an ordinary rowid table, its rows in the order they were stored, with
-- (principal_id, key) a unique index beside it. Keys are usually random (UUIDs): as the primary key of
-- a WITHOUT ROWID table each record (its stored answer included) went to a random place in the
-- table, so every commit rewrote one page of the table per keyed request; now a record is appended
-- and only its small index entry goes to a random place. Same columns, same rows.

CREATE TABLE idempotency_by_arrival (
  principal_id TEXT NOT NULL,
  key          TEXT NOT NULL,
  digest       TEXT NOT NULL,
  status       INTEGER NOT NULL,
  body         TEXT,
  created_at   INTEGER NOT NULL
) STRICT;

INSERT INTO idempotency_by_arrival (principal_id, key, digest, status, body, created_at)
  SELECT principal_id, key, digest, status, body, created_at FROM idempotency ORDER BY created_at;

DROP TABLE idempotency;
ALTER TABLE idempotency_by_arrival RENAME TO idempotency;
CREATE UNIQUE INDEX idempotency_by_key ON idempotency (principal_id, key);
CREATE INDEX idempotency_by_age ON idempotency (created_at);
