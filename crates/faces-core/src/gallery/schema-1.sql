-- Gallery schema, version 1.
-- meta: the recogniser that made the templates and the decision threshold (JSON values).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- uid: a random pseudonymous id, the only way the audit trail names a subject.
CREATE TABLE subjects (
    id      INTEGER PRIMARY KEY,
    uid     TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
-- The legal basis for holding a subject's templates. Erasure deletes the
-- subject and clears the record's personal fields (evidence, recorded_by),
-- keeping when and on what basis data was held, under the pseudonymous uid.
CREATE TABLE consents (
    id          INTEGER PRIMARY KEY,
    subject_id  INTEGER REFERENCES subjects(id) ON DELETE SET NULL,
    subject_uid TEXT NOT NULL,
    basis       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    evidence    TEXT,
    recorded_by TEXT,
    recorded    TEXT NOT NULL,
    expires     TEXT,
    withdrawn   TEXT,
    erased      TEXT
);
-- Every photo processed for a subject, with or without a usable face, so that
-- reruns skip it. The photo itself is never copied: only its path and hash.
CREATE TABLE photos (
    id         INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    status     TEXT NOT NULL,
    enrolled   TEXT NOT NULL,
    UNIQUE (subject_id, sha256)
);
-- One template per enrolled face: the face's box and landmarks (JSON) and its
-- embedding, little-endian f32 values sealed with the gallery's cipher (meta
-- `cipher`: AES-256-GCM; XChaCha20-Poly1305 when absent) (random
-- nonce first) and bound to the subject's uid and the photo's hash.
CREATE TABLE templates (
    id         INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    photo_id   INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    face       TEXT NOT NULL,
    embedding  BLOB NOT NULL
);
CREATE INDEX templates_subject ON templates(subject_id);
CREATE INDEX photos_subject ON photos(subject_id);
CREATE INDEX consents_subject ON consents(subject_id);
