-- Issue 16: API tokens for software carry scopes (space-separated, e.g. 'calls:read webhooks');
-- NULL keeps a personal token's full access to its account.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
