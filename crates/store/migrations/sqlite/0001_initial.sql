-- Sambung schema, SQLite. Times are Unix seconds.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT,
    extension TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    realm TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Incremented by every account change, so that a running server notices changes made by the CLI.
CREATE TABLE account_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO account_generation (id, value) VALUES (1, 0);

CREATE TABLE bindings (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    instance TEXT,
    reg_id INTEGER,
    q INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    received TEXT NOT NULL,
    path TEXT,
    user_agent TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact)
);
CREATE INDEX bindings_expires_at ON bindings (expires_at);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_uri TEXT NOT NULL,
    from_account INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    to_account INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    to_user TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_to_account ON messages (to_account, id);
CREATE INDEX messages_from_account ON messages (from_account, id);

CREATE TABLE deliveries (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_key TEXT NOT NULL,
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, device_key)
);
CREATE INDEX deliveries_account ON deliveries (account_id);

CREATE TABLE cdrs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    caller_device TEXT,
    callee_device TEXT,
    started_at INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at INTEGER NOT NULL,
    duration_secs INTEGER NOT NULL,
    cause_code INTEGER NOT NULL,
    cause_reason TEXT NOT NULL,
    hangup_side TEXT NOT NULL CHECK (hangup_side IN ('caller', 'callee', 'system'))
);
CREATE INDEX cdrs_caller ON cdrs (caller, id);
CREATE INDEX cdrs_callee ON cdrs (callee, id);
