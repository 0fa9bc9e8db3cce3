-- Issue 16: each call record says who answered (the account's username, or the application:
-- voicemail ...) and where the call was forwarded on its way: one line per forward, its RFC 5806
-- reason, a space, and the target (a username or an outside URI), in order.
ALTER TABLE cdrs ADD COLUMN answered_by TEXT;
ALTER TABLE cdrs ADD COLUMN forwards TEXT NOT NULL DEFAULT '';
