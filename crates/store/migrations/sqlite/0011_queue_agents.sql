-- Issue 17: call queues. An agent's login state (*45 in, *46 out), kept across restarts; an
-- agent of the configuration with no row here is logged in.
CREATE TABLE queue_agents (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    logged_in BOOLEAN NOT NULL,
    updated_at INTEGER NOT NULL
);
