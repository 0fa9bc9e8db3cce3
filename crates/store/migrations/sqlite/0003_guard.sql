-- Issue 11, SQLite: the guard's bans and lockouts, kept across restarts. Times are Unix seconds.

-- A banned source address (an IPv6 source's /64 is stored as its network address).
CREATE TABLE bans (
    address TEXT PRIMARY KEY,
    -- NULL: until removed by hand.
    until_at INTEGER,
    reason TEXT NOT NULL,
    -- TRUE when an operator added it (`sambung ban add`).
    manual BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL
);

-- A locked account ('account', by username) or voicemail PIN ('pin', by account id).
CREATE TABLE lockouts (
    kind TEXT NOT NULL CHECK (kind IN ('account', 'pin')),
    subject TEXT NOT NULL,
    until_at INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- Bumped by every change an operator makes, so that a running server reloads the lists.
CREATE TABLE guard_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO guard_generation (id, value) VALUES (1, 0);
