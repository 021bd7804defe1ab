-- Gallery schema, version 1.
-- meta: the recogniser that made the templates and the decision threshold (JSON values).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE subjects (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
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
-- embedding as little-endian f32 values.
CREATE TABLE templates (
    id         INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    photo_id   INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    face       TEXT NOT NULL,
    embedding  BLOB NOT NULL
);
CREATE INDEX templates_subject ON templates(subject_id);
CREATE INDEX photos_subject ON photos(subject_id);
