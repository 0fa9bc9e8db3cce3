-- Issue 13: voice messages sent in the app also by email, with the recording attached, for the
-- accounts that ask for it (to their voicemail address, else their account's).
ALTER TABLE call_settings ADD COLUMN voice_messages_email BOOLEAN NOT NULL DEFAULT FALSE;
