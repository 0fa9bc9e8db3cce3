-- Issue 16, SQLite: webhooks (an HTTP endpoint that receives signed events) and their durable
-- delivery outbox. Times are Unix seconds.

-- A subscription: the events of its owner's account (or, made by an administrator with
-- all_accounts, of every account) POSTed to url, signed with secret (Standard Webhooks).
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- Space-separated event types, e.g. 'call.started call.ended'.
    events TEXT NOT NULL,
    all_accounts BOOLEAN NOT NULL DEFAULT FALSE,
    -- 'whsec_' and the base64 of the key: kept in clear, since signing needs it.
    secret TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id, id);

-- One event for one webhook, until delivered or given up; kept afterwards as the delivery log.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The webhook-id header: the same for every attempt and for a replay.
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When a pending delivery is next tried; NULL once delivered or given up.
    next_attempt_at INTEGER,
    -- The receiver's last HTTP status, or the last error when there was none.
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
