-- Issue 18: the service's phone numbers (DIDs, E.164 with '+') and what each reaches (an account,
-- or a ring group of the configuration by name), and the state of each carrier registration as
-- the server last saw it.
CREATE TABLE numbers (
    number TEXT PRIMARY KEY,
    account_id BIGINT REFERENCES accounts(id) ON DELETE SET NULL,
    group_name TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX numbers_account ON numbers (account_id);

CREATE TABLE trunk_status (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
