-- xianjie's PostgreSQL schema, version 1. Applied by `store::postgres::migrate` inside one
-- transaction, under an advisory lock, so instances starting together apply it once.

-- The store's small named values (sled's `meta` tree): JSON, by name.
CREATE TABLE meta (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
