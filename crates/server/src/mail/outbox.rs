//! The outbox worker: one task that sends the mails queued in the database.
//!
//! Voicemail code queues a mail with `Store::enqueue_mail` and wakes the worker through its
//! [`MailWake`]. The worker sends every due mail, one at a time, and records each outcome: sent,
//! retried later, or given up. Retries back off exponentially ([`retry_at`]); a permanent refusal
//! (RFC 5321 §4.2.1, a 5yz reply) or a malformed mail is given up at once. Because the queue is
//! in the database, mails survive a restart, and a dead SMTP server costs the calls nothing.
//!
//! Between passes the worker sleeps until the next retry is due, until it is woken, or at most
//! [`MAX_SLEEP`], so that mail queued by another process on the same database is picked up too.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sambung_store::{OutgoingMail, Store, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::{Attachment, Email, MailError, Mailer};
use crate::config::EmailConfig;

/// Wakes the outbox worker after a mail was queued. Call `notify_one()` (not `notify_waiters()`):
/// a wake that comes while the worker is busy is then kept for its next sleep.
pub type MailWake = Arc<Notify>;

/// The longest wait between two retries of one mail, in seconds (RFC 5321 §4.5.4.1 suggests at
/// least 30 minutes between retries for a relay; an hour keeps a voicemail's notice timely).
pub const MAX_RETRY_DELAY: u64 = 3600;

/// The longest sleep between two looks at the outbox.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The pause after a database error before the worker tries again.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// Mails read from the outbox per query.
const BATCH: u32 = 16;

/// When to try a mail again after a failed attempt at `now`, or `None` to give it up. `attempts`
/// counts the failed attempts before this one: the first retry waits `retry_seconds`, each later
/// one twice as long as the last, at most [`MAX_RETRY_DELAY`]; after `max_attempts` failed
/// attempts the mail is given up.
pub fn retry_at(config: &EmailConfig, attempts: u32, now: i64) -> Option<i64> {
    if attempts.saturating_add(1) >= config.max_attempts {
        return None;
    }
    let factor = 2u64.checked_pow(attempts).unwrap_or(u64::MAX);
    let delay = config.retry_seconds.saturating_mul(factor).min(MAX_RETRY_DELAY);
    // At most an hour: always fits an i64.
    Some(now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)))
}

/// The running outbox worker. Dropping it stops the worker after the attempt in flight.
#[derive(Debug)]
pub struct MailWorker {
    wake: MailWake,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MailWorker {
    /// A handle that wakes the worker (see [`MailWake`]); clone it freely.
    pub fn wake_handle(&self) -> MailWake {
        self.wake.clone()
    }

    /// Wakes the worker: a mail was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the worker and waits for it. A send in progress is finished (or times out after
    /// `[email] timeout_seconds`) and recorded first, so no mail is sent twice for a stop.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Starts the outbox worker on the current tokio runtime. Without `[email] server` it sends
/// nothing (the mails stay queued) and says so once in the log.
pub fn spawn(store: Store, config: EmailConfig) -> MailWorker {
    spawn_with_ca(store, config, None)
}

/// [`spawn`], trusting the PEM CA certificates `extra_ca_pem` for the SMTP server besides the
/// system's roots (tests use their own CA).
pub fn spawn_with_ca(store: Store, config: EmailConfig, extra_ca_pem: Option<Vec<u8>>) -> MailWorker {
    let wake = MailWake::default();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(store, config, extra_ca_pem, wake.clone(), stop_rx));
    MailWorker { wake, stop, task }
}

/// True once the worker should end: asked to, or its [`MailWorker`] is gone.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

async fn run(
    store: Store,
    config: EmailConfig,
    extra_ca_pem: Option<Vec<u8>>,
    wake: MailWake,
    mut stop: watch::Receiver<bool>,
) {
    let mailer = match Mailer::new(&config, extra_ca_pem.as_deref()) {
        Ok(mailer) => mailer,
        Err(e) => {
            match e {
                MailError::NotConfigured => info!("[email] server is unset: voicemail emails stay queued, unsent"),
                e => error!(error = %e, "[email] settings unusable: voicemail emails stay queued, unsent"),
            }
            // Nothing to do but wait for the end.
            let _ = stop.wait_for(|stop| *stop).await;
            return;
        }
    };
    info!(server = mailer.server(), tls = ?config.tls, "email outbox worker started");
    let mut worker = Worker { store, mailer, config, unrecorded: Vec::new() };
    while !stopping(&stop) {
        let pause = worker.pass(&stop).await;
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

struct Worker {
    store: Store,
    mailer: Mailer,
    config: EmailConfig,
    /// Mails delivered whose `mail_sent` failed (the database was unavailable): recorded before
    /// anything else is sent, and never sent again meanwhile.
    unrecorded: Vec<i64>,
}

impl Worker {
    /// Sends what is due; returns how long to sleep before the next pass (zero: at once).
    async fn pass(&mut self, stop: &watch::Receiver<bool>) -> Duration {
        if !self.record_unrecorded().await {
            return STORE_RETRY;
        }
        let due = match self.store.due_mail(unix_now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                warn!(error = %e, "email outbox unreadable; trying again shortly");
                return STORE_RETRY;
            }
        };
        let full = due.len() == BATCH as usize;
        for mail in &due {
            if stopping(stop) {
                return Duration::ZERO;
            }
            if let Err(e) = self.attempt(mail).await {
                warn!(id = mail.id, error = %e, "email outbox not updated; trying again shortly");
                return STORE_RETRY;
            }
        }
        if full {
            return Duration::ZERO;
        }
        match self.store.next_mail_due().await {
            Ok(None) => MAX_SLEEP,
            Ok(Some(at)) => {
                // Whole seconds: a retry due in the current second is looked at in the next.
                let wait = at.saturating_sub(unix_now()).max(1);
                Duration::from_secs(u64::try_from(wait).unwrap_or(1)).min(MAX_SLEEP)
            }
            Err(e) => {
                warn!(error = %e, "email outbox unreadable; trying again shortly");
                STORE_RETRY
            }
        }
    }

    /// One delivery attempt of `mail`, and its outcome written to the outbox.
    async fn attempt(&mut self, mail: &OutgoingMail) -> Result<(), StoreError> {
        let attempt = mail.attempts.saturating_add(1);
        // Fixed per queued mail: a mail sent twice is one message to the reader's client.
        let message_id = format!("<sambung.{}.{}@{}>", mail.created_at, mail.id, self.mailer.from_domain());
        let email = Email {
            to: &mail.to,
            subject: &mail.subject,
            body: &mail.body,
            attachment: mail.attachment.as_ref().map(|(file_name, content_type, data)| Attachment {
                file_name,
                content_type,
                data,
            }),
            message_id: Some(&message_id),
        };
        match self.mailer.send(&email).await {
            Ok(()) => {
                info!(id = mail.id, to = %mail.to, attempt, "email sent");
                if let Err(e) = self.store.mail_sent(mail.id, unix_now()).await {
                    self.unrecorded.push(mail.id);
                    return Err(e);
                }
            }
            Err(e) => {
                let now = unix_now();
                let retry = if e.is_permanent() { None } else { retry_at(&self.config, mail.attempts, now) };
                match retry {
                    Some(at) => {
                        warn!(id = mail.id, to = %mail.to, attempt, error = %e, retry_in_s = at - now, "email not sent; will retry")
                    }
                    None => {
                        warn!(id = mail.id, to = %mail.to, attempt, error = %e, permanent = e.is_permanent(), "email not sent; given up")
                    }
                }
                self.store.mail_failed(mail.id, &e.to_string(), retry).await?;
            }
        }
        Ok(())
    }

    /// Records the deliveries whose `mail_sent` failed; false while the database still fails.
    async fn record_unrecorded(&mut self) -> bool {
        while let Some(&id) = self.unrecorded.last() {
            match self.store.mail_sent(id, unix_now()).await {
                Ok(()) | Err(StoreError::UnknownMail(_)) => {
                    self.unrecorded.pop();
                }
                Err(e) => {
                    warn!(id, error = %e, "sent email still not recorded in the outbox");
                    return false;
                }
            }
        }
        true
    }
}

/// Unix seconds now: outbox times are wall-clock times, shared with other processes.
fn unix_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(retry_seconds: u64, max_attempts: u32) -> EmailConfig {
        EmailConfig { retry_seconds, max_attempts, ..EmailConfig::default() }
    }

    #[test]
    fn retries_double_up_to_an_hour_then_give_up() {
        let c = config(30, 10);
        let delays: Vec<Option<i64>> = (0..10).map(|a| retry_at(&c, a, 1000).map(|at| at - 1000)).collect();
        assert_eq!(
            delays,
            [Some(30), Some(60), Some(120), Some(240), Some(480), Some(960), Some(1920), Some(3600), Some(3600), None]
        );
    }

    #[test]
    fn max_attempts_counts_every_attempt() {
        // One attempt allowed: the first failure gives up.
        assert_eq!(retry_at(&config(1, 1), 0, 0), None);
        assert_eq!(retry_at(&config(1, 2), 0, 0), Some(1));
        assert_eq!(retry_at(&config(1, 2), 1, 0), None);
    }

    #[test]
    fn huge_values_saturate() {
        let c = config(u64::MAX, u32::MAX);
        assert_eq!(retry_at(&c, 0, 5), Some(5 + 3600));
        assert_eq!(retry_at(&c, 200, 5), Some(5 + 3600));
        assert_eq!(retry_at(&config(1, u32::MAX), 63, i64::MAX - 10), Some(i64::MAX));
    }
}
