-- xianjie's PostgreSQL schema, version 1. Applied by `store::postgres::migrate` inside one
-- transaction, under an advisory lock, so instances starting together apply it once.
--
-- Each of the store's trees is a table of byte keys and values, holding exactly the bytes the
-- embedded sled store holds under the same keys (their encodings: `src/store/mod.rs`). Keys
-- compare as bytes, as in sled, so range scans read the same order.

CREATE TABLE cases (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE changes (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE outbox (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE documents (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE quarantine (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE quarantine_fp (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE counts (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE meta (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE ports (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE delivered (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE dead (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE reports (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE parties (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE parties_sorted (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE party_watch (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE leads (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE leads_pending (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE supervision (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE case_supervision (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE transfers (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE case_versions (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE supervision_outbox (key bytea PRIMARY KEY, value bytea NOT NULL);
-- The keystore of the instances sharing this database: one value, still encrypted.
CREATE TABLE keystore (key bytea PRIMARY KEY, value bytea NOT NULL);
-- The audit log of the instances sharing this database: entries waiting to be sequenced, the
-- sequenced entries (leaf hash, then the canonical line) and the signed checkpoints.
CREATE TABLE audit_queue (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE audit_log (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE audit_checkpoints (key bytea PRIMARY KEY, value bytea NOT NULL);

-- Ids of quarantine entries, dead letters and supervision actions (sled's `generate_id`).
CREATE SEQUENCE xianjie_ids MINVALUE 0 START 0;
