-- Issue 13, SQLite: the web app's sign-in sessions, personal API tokens, sign-up invitations, contacts and
-- the admin role. Times are Unix seconds. Secrets are never stored: only their SHA-256 (hex).

ALTER TABLE accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'));

-- A signed-in browser: the session cookie's secret, hashed.
CREATE TABLE web_sessions (
    secret_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Sent back in the X-CSRF-Token header of every cookie-authenticated write.
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    user_agent TEXT,
    source TEXT
);
CREATE INDEX web_sessions_account ON web_sessions (account_id);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);

-- A personal API token, for scripts: `Authorization: Bearer <token>`.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    -- The token's first characters, shown in lists so that a user can tell tokens apart.
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER
);
CREATE INDEX api_tokens_account ON api_tokens (account_id, id);

-- An invitation to sign up, made by an admin (for `[web] signup = "invite"`).
CREATE TABLE invitations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_by INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    email TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when the invitation is claimed; used_by once the account exists.
    used_at INTEGER,
    used_by INTEGER REFERENCES accounts (id) ON DELETE SET NULL
);

-- A person's contacts: other accounts, each with an optional nickname.
CREATE TABLE contacts (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    nickname TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_id)
);

-- How far each person has read each conversation (the id of the last message read).
CREATE TABLE conversation_reads (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    peer_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    last_read_id INTEGER NOT NULL,
    read_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, peer_id)
);
-- Conversations are found by sender and recipient.
CREATE INDEX messages_conversation ON messages (from_account, to_account, id);

-- Voice messages: a clip recorded in the app, sent as a message (whose text carries a link to
-- it, for SIP phones).
CREATE TABLE clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    content_type TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    audio BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
ALTER TABLE messages ADD COLUMN clip_id INTEGER REFERENCES clips (id) ON DELETE SET NULL;

-- A password reset asked for by email: the link's secret, hashed.
CREATE TABLE password_resets (
    secret_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
