-- Issue 5, SQLite: call settings (forwarding, do-not-disturb, voicemail), voicemail messages and
-- the outgoing mail queue. Times are Unix seconds.

-- One row per account that changed anything; an account without a row has the defaults.
CREATE TABLE call_settings (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- Forwarding targets: a username, an extension or a sip:/sips: URI; NULL = not forwarded.
    forward_always TEXT,
    forward_busy TEXT,
    forward_no_answer TEXT,
    forward_offline TEXT,
    no_answer_secs INTEGER NOT NULL DEFAULT 20 CHECK (no_answer_secs BETWEEN 5 AND 300),
    dnd BOOLEAN NOT NULL DEFAULT FALSE,
    voicemail BOOLEAN NOT NULL DEFAULT TRUE,
    -- Where new voicemail is mailed; NULL = the account's own email.
    voicemail_email TEXT,
    voicemail_attach BOOLEAN NOT NULL DEFAULT TRUE,
    -- Argon2id PHC string of the mailbox PIN.
    pin_hash TEXT,
    -- The recorded greeting, a WAV file.
    greeting BLOB,
    updated_at INTEGER NOT NULL
);

CREATE TABLE voicemails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    caller_uri TEXT NOT NULL,
    caller_name TEXT NOT NULL,
    caller_number TEXT,
    created_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    state TEXT NOT NULL CHECK (state IN ('new', 'saved')),
    -- A complete WAV file.
    audio BLOB NOT NULL
);
CREATE INDEX voicemails_account ON voicemails (account_id, created_at, id);

-- Mail waiting to be sent, sent, or given up; kept for the record after sending.
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    attachment_name TEXT,
    attachment_type TEXT,
    attachment_data BLOB,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    -- When a pending mail is next tried; NULL once sent or given up.
    next_attempt_at INTEGER,
    sent_at INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
