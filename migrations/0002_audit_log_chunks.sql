-- xianjie's PostgreSQL schema, version 2: the audit log's rows hold up to 256 entries each.
--
-- No table changes: `audit_log` keeps byte keys and values. From this version the sequencer
-- writes a row per run of up to 256 entries (key: the first entry's number, u64 big-endian,
-- then the byte 0x01; value: each entry's length, u32 big-endian, then the entry), where it
-- wrote a row per entry (key: its number). Rows written before stay and read as before. A
-- binary of version 1 would misread the new rows, so the version number moves: such a binary
-- now refuses this database at start, as a database newer than itself.

COMMENT ON TABLE audit_log IS
    'xianjie audit log: rows of up to 256 entries (key: first number, then 0x01), or one entry (key: its number) if written by schema version 1';
