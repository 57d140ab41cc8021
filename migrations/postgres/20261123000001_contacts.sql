-- The contact directory. Roles and channels are JSON arrays (channels in order of
-- preference). Phones are E.164. Real contact lists are imported, never committed.
CREATE TABLE contacts (
    id       TEXT PRIMARY KEY NOT NULL,
    name     TEXT NOT NULL,
    roles    TEXT NOT NULL,
    place    TEXT NOT NULL,
    phone    TEXT,
    email    TEXT,
    language TEXT NOT NULL,
    channels TEXT NOT NULL
);
CREATE INDEX contacts_place ON contacts (place);
