//! Email: voicemail notifications sent by SMTP, from a durable outbox with retries.
