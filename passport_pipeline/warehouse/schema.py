"""The warehouse's bookkeeping tables: what ran, what was extracted, how far, what went wrong.

Entity tables (``raw.*``, ``staging.*``, ``passport.*``) are created by the stage that owns
them, from the entity registry; this module owns the ``sync`` schema every stage shares.
"""

SCHEMAS = ("raw", "staging", "sync", "passport", "history")

SYNC_DDL = """
CREATE TABLE IF NOT EXISTS sync.extractions (
    run_id         VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    entity         VARCHAR NOT NULL,
    scope          VARCHAR NOT NULL,      -- a school's sis_id, or '*' for source-wide pulls
    mode           VARCHAR NOT NULL,      -- full | delta
    status         VARCHAR NOT NULL,      -- running | complete | failed | absent | abandoned
    rows           BIGINT NOT NULL DEFAULT 0,
    quarantined    BIGINT NOT NULL DEFAULT 0,
    started_at     TIMESTAMP NOT NULL,
    finished_at    TIMESTAMP,
    error          VARCHAR,               -- what went wrong, in words for an admin
    stats          JSON                   -- pages, duplicates dropped, clamp detected, ...
);

CREATE TABLE IF NOT EXISTS sync.watermarks (
    source         VARCHAR NOT NULL,
    entity         VARCHAR NOT NULL,
    watermark      VARCHAR NOT NULL,      -- highest dateLastModified seen, as the source wrote it
    run_id         VARCHAR NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, entity)
);

CREATE TABLE IF NOT EXISTS sync.issues (
    run_id         VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    entity         VARCHAR NOT NULL,
    record_id      VARCHAR,
    attribute      VARCHAR,
    rule           VARCHAR NOT NULL,      -- e.g. quarantine, report_if_missing, referential
    severity       VARCHAR NOT NULL,      -- Error | Skipped | Warning
    message        VARCHAR NOT NULL,
    detected_at    TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS sync.schools_seen (
    source         VARCHAR NOT NULL,
    school_id      VARCHAR NOT NULL,      -- the source's school id, as sent
    first_run_id   VARCHAR NOT NULL,      -- the run that first saw it in the source
    last_run_id    VARCHAR NOT NULL,      -- the latest run that saw it
    PRIMARY KEY (source, school_id)
);
"""
