-- A packed copy of the mappings table, written at a clean stop so the next start reads a few large
-- blobs instead of a million rows (store/mapping-snapshot.ts has the format). It is a cache, exact by
-- construction: the clean stop that writes it also creates triggers that empty it in the same
-- transaction as any change to the mappings table, by ioasd or by any other SQLite client; ioasd's
-- own first change after a start removes the copy and the triggers together (so they cost nothing
-- while the server runs), and a start trusts a copy only while its triggers are there.

CREATE TABLE mapping_snapshot (
  part INTEGER PRIMARY KEY,   -- 0, 1, 2, ... in (ioas_id, iova) order
  rows INTEGER NOT NULL,
  data BLOB NOT NULL
) STRICT;
