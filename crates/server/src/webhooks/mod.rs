//! Webhooks: domain events POSTed to other software (a CRM, a helpdesk), signed, from a durable
//! outbox.
//!
//! [`run_queue`] subscribes to the event stream. For each event some webhook wants (by type, and
//! by account: the owner's own events, or every account's for an administrator's webhook made so)
//! it writes one delivery per webhook into the store, in one transaction. [`run_sender`] takes due
//! deliveries from the store and POSTs them concurrently, each attempt signed afresh
//! ([`sign`]); a 2xx answer delivers it, anything else is tried again after 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h and 10 h, then given up. Nothing here is on call control's path: a slow or dead
//! receiver only grows the outbox. A restart loses nothing queued.

pub mod client;
pub mod sign;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sambung_pbx::{Event, Unregistration};
use sambung_store::{Delivery, NewDelivery, Store, Webhook};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::events::Shared;

/// The event types a webhook may ask for.
pub const EVENT_TYPES: [&str; 10] = [
    "call.started",
    "call.ringing",
    "call.answered",
    "call.ended",
    "voicemail.left",
    "message.received",
    "device.registered",
    "device.unregistered",
    "originate.ended",
    "transfer.ended",
];

/// Seconds before each retry: after the first failed attempt 5 s, and so on; after the last,
/// the delivery is given up (about 28 hours after the event).
const RETRIES: [i64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries sent at once.
const CONCURRENCY: u32 = 16;

/// The webhooks in force (a cache of the store's table) and the sender's wake-up. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hooks {
    inner: Arc<HooksInner>,
}

#[derive(Debug)]
struct HooksInner {
    store: Store,
    list: RwLock<Vec<Webhook>>,
    /// Admin status of the webhooks' owners, for where their requests may go.
    admins: RwLock<HashMap<i64, bool>>,
    wake: Notify,
}

impl Hooks {
    /// The webhooks of `store`, loaded now.
    pub async fn load(store: Store) -> Result<Hooks, sambung_store::StoreError> {
        let hooks = Hooks {
            inner: Arc::new(HooksInner {
                store,
                list: RwLock::default(),
                admins: RwLock::default(),
                wake: Notify::new(),
            }),
        };
        hooks.reload().await?;
        Ok(hooks)
    }

    /// Reads the webhooks again (after one was made or removed).
    pub async fn reload(&self) -> Result<(), sambung_store::StoreError> {
        let list = self.inner.store.all_webhooks().await?;
        let mut admins = HashMap::new();
        for hook in &list {
            if let std::collections::hash_map::Entry::Vacant(entry) = admins.entry(hook.account_id) {
                let admin = self.inner.store.account(hook.account_id).await?.is_some_and(|a| a.admin);
                entry.insert(admin);
            }
        }
        *self.inner.list.write().unwrap_or_else(std::sync::PoisonError::into_inner) = list;
        *self.inner.admins.write().unwrap_or_else(std::sync::PoisonError::into_inner) = admins;
        Ok(())
    }

    fn list(&self) -> Vec<Webhook> {
        self.inner.list.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn is_empty(&self) -> bool {
        self.inner.list.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    fn reach(&self, owner: i64) -> client::Reach {
        let admins = self.inner.admins.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if admins.get(&owner).copied().unwrap_or(false) { client::Reach::Any } else { client::Reach::Public }
    }

    /// Wakes the sender: a delivery is due now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }
}

/// What a call's events need from its start: who takes part.
#[derive(Debug)]
struct CallInfo {
    call_id: String,
    accounts: Vec<i64>,
}

/// Turns events into payloads: the event type, the accounts it concerns, and its data.
#[derive(Debug, Default)]
struct Translator {
    calls: HashMap<u64, CallInfo>,
    usernames: HashMap<i64, String>,
}

impl Translator {
    /// Follows calls, and says what a webhook would get: `(type, accounts, data)`.
    fn translate(&mut self, event: &Event) -> Option<(&'static str, Vec<i64>, Value)> {
        match event {
            Event::Registered { account_id, username, device, contact, transport, source, expires_at, user_agent } => {
                self.usernames.insert(*account_id, username.clone());
                Some((
                    "device.registered",
                    vec![*account_id],
                    json!({
                        "user": username, "device": device, "contact": contact,
                        "transport": transport.to_string(), "source": source.to_string(),
                        "expires_at": expires_at, "user_agent": user_agent,
                    }),
                ))
            }
            Event::Unregistered { account_id, device, contact, cause } => {
                let cause = match cause {
                    Unregistration::Removed => "removed",
                    Unregistration::Expired => "expired",
                    Unregistration::Replaced => "replaced",
                    Unregistration::FlowClosed => "connection_closed",
                };
                Some((
                    "device.unregistered",
                    vec![*account_id],
                    json!({ "user_id": account_id, "device": device, "contact": contact, "cause": cause }),
                ))
            }
            Event::CallStarted { call, call_id, caller, callee, caller_id, callee_id, at } => {
                let accounts: Vec<i64> = [*caller_id, *callee_id].into_iter().filter(|id| *id > 0).collect();
                self.calls.insert(*call, CallInfo { call_id: call_id.clone(), accounts: accounts.clone() });
                Some((
                    "call.started",
                    accounts,
                    json!({ "call": call, "call_id": call_id, "caller": caller, "callee": callee, "at": at }),
                ))
            }
            Event::CallRinging { call, target, target_id } => {
                let info = self.calls.get_mut(call)?;
                if *target_id > 0 && !info.accounts.contains(target_id) {
                    info.accounts.push(*target_id);
                }
                Some((
                    "call.ringing",
                    info.accounts.clone(),
                    json!({ "call": call, "call_id": info.call_id, "target": target }),
                ))
            }
            Event::CallAnswered { call, by, account_id, at } => {
                let info = self.calls.get_mut(call)?;
                if let Some(id) = account_id
                    && !info.accounts.contains(id)
                {
                    info.accounts.push(*id);
                }
                Some((
                    "call.answered",
                    info.accounts.clone(),
                    json!({ "call": call, "call_id": info.call_id, "by": by, "at": at }),
                ))
            }
            Event::CallEnded(record) => {
                let accounts = self.calls.remove(&record.call).map(|i| i.accounts).unwrap_or_default();
                Some((
                    "call.ended",
                    accounts,
                    json!({
                        "call": record.call, "call_id": record.call_id, "caller": record.caller,
                        "callee": record.callee, "caller_device": record.caller_device,
                        "callee_device": record.callee_device, "started_at": record.started_at,
                        "answered_at": record.answered_at, "ended_at": record.ended_at,
                        "duration_secs": record.duration_secs, "result": crate::metrics::call_result(record),
                        "cause_code": record.cause_code, "cause_reason": record.cause_reason,
                        "hangup_side": record.hangup_side, "answered_by": record.answered_by,
                        "forwards": record.forwards.iter().map(|(to, reason)| json!({ "to": to, "reason": reason })).collect::<Vec<_>>(),
                    }),
                ))
            }
            Event::VoicemailLeft { account_id, message_id, caller, duration_secs } => Some((
                "voicemail.left",
                vec![*account_id],
                json!({ "user_id": account_id, "voicemail_id": message_id, "caller": caller, "duration_secs": duration_secs }),
            )),
            Event::TransferEnded { call, target, status, reason } => {
                let info = self.calls.get(call)?;
                Some((
                    "transfer.ended",
                    info.accounts.clone(),
                    json!({
                        "call": call, "call_id": info.call_id, "to": target,
                        "connected": (200..300).contains(status), "status": status, "reason": reason,
                    }),
                ))
            }
            Event::OriginateEnded { id, account_id, username, target, status, reason } => Some((
                "originate.ended",
                vec![*account_id],
                json!({
                    "id": id, "user_id": account_id, "user": username, "to": target,
                    "connected": (200..300).contains(status), "status": status, "reason": reason,
                }),
            )),
            Event::MessageStored { message_id, from_account, to_account } => Some((
                "message.received",
                vec![*to_account],
                json!({ "message_id": message_id, "from_user_id": from_account, "to_user_id": to_account }),
            )),
            _ => None,
        }
    }
}

/// The JSON body of a delivery: `{"type", "timestamp", "data"}` as Standard Webhooks has it.
fn payload(kind: &str, data: Value, now: std::time::SystemTime) -> String {
    let timestamp = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({ "type": kind, "timestamp": rfc3339(timestamp), "data": data }).to_string()
}

/// `2026-12-07T12:00:00Z` for Unix seconds `secs`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Queues a delivery of every event a webhook wants, until the stream ends.
pub async fn run_queue(hooks: Hooks, mut events: mpsc::UnboundedReceiver<Shared>) {
    let mut translator = Translator::default();
    while let Some(event) = events.recv().await {
        // Calls are followed even while no webhook exists, so that one made mid-call gets
        // the call's later events with its accounts.
        let Some((kind, accounts, data)) = translator.translate(&event) else { continue };
        if hooks.is_empty() {
            continue;
        }
        let wanted: Vec<Webhook> = hooks
            .list()
            .into_iter()
            .filter(|h| h.wants(kind) && (h.all_accounts || accounts.contains(&h.account_id)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let body = payload(kind, data, std::time::SystemTime::now());
        let message_id = format!("msg_{:032x}", rand::random::<u128>());
        let deliveries: Vec<NewDelivery> = wanted
            .iter()
            .map(|h| NewDelivery {
                webhook_id: h.id,
                message_id: message_id.clone(),
                event_type: kind.to_owned(),
                payload: body.clone(),
            })
            .collect();
        match hooks.inner.store.enqueue_deliveries(&deliveries, unix_now()).await {
            Ok(()) => hooks.wake(),
            Err(error) => warn!(%error, kind, "cannot queue webhook deliveries"),
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Sends due deliveries until aborted.
pub async fn run_sender(hooks: Hooks) {
    let store = hooks.inner.store.clone();
    loop {
        let due = match store.due_deliveries(unix_now(), CONCURRENCY).await {
            Ok(due) => due,
            Err(error) => {
                warn!(%error, "cannot read the webhook outbox");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if !due.is_empty() {
            let mut attempts = JoinSet::new();
            for delivery in due {
                let hooks = hooks.clone();
                attempts.spawn(async move { attempt(&hooks, delivery).await });
            }
            while attempts.join_next().await.is_some() {}
            continue;
        }
        let wait = match store.next_delivery_due().await {
            Ok(Some(at)) => Duration::from_secs(u64::try_from(at - unix_now()).unwrap_or(0).clamp(1, 60)),
            _ => Duration::from_secs(60),
        };
        let _ = tokio::time::timeout(wait, hooks.inner.wake.notified()).await;
    }
}

/// One attempt at a delivery, recorded in the store.
async fn attempt(hooks: &Hooks, delivery: Delivery) {
    let store = &hooks.inner.store;
    let hook = hooks.list().into_iter().find(|h| h.id == delivery.webhook_id);
    let Some(hook) = hook else {
        let _ = store.delivery_failed(delivery.id, None, "the webhook was removed", None).await;
        return;
    };
    let timestamp = unix_now();
    let Some(signature) = sign::signature(&hook.secret, &delivery.message_id, timestamp, delivery.payload.as_bytes())
    else {
        let _ = store.delivery_failed(delivery.id, None, "the webhook's secret is unreadable", None).await;
        return;
    };
    let headers = [
        ("webhook-id", delivery.message_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let body = bytes::Bytes::from(delivery.payload.clone());
    let answer = client::post(&hook.url, &headers, body, hooks.reach(hook.account_id), ATTEMPT_TIMEOUT).await;
    let retry_at = RETRIES.get(delivery.attempts.max(0) as usize).map(|delay| unix_now() + delay);
    let recorded = match answer {
        Ok(status) if (200..300).contains(&status) => {
            debug!(webhook = hook.id, delivery = delivery.id, status, "webhook delivered");
            store.delivery_done(delivery.id, status, unix_now()).await
        }
        Ok(status) => {
            info!(webhook = hook.id, delivery = delivery.id, status, "webhook refused; tried again later");
            store.delivery_failed(delivery.id, Some(status), &format!("answered {status}"), retry_at).await
        }
        Err(error) => {
            info!(webhook = hook.id, delivery = delivery.id, %error, "webhook not delivered; tried again later");
            store.delivery_failed(delivery.id, None, &error.to_string(), retry_at).await
        }
    };
    if let Err(error) = recorded {
        warn!(%error, delivery = delivery.id, "cannot record a webhook attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_645_105), "2026-12-07T12:05:05Z");
    }

    #[test]
    fn calls_are_followed_to_their_accounts() {
        let mut t = Translator::default();
        let started = Event::CallStarted {
            call: 4,
            call_id: "c4".into(),
            caller: "alice".into(),
            callee: "bob".into(),
            caller_id: 1,
            callee_id: 2,
            at: 10,
        };
        let (kind, accounts, data) = t.translate(&started).unwrap();
        assert_eq!((kind, accounts, &data["caller"]), ("call.started", vec![1, 2], &json!("alice")));
        // forwarded to carol (3), who answers
        let (_, accounts, _) =
            t.translate(&Event::CallRinging { call: 4, target: "carol".into(), target_id: 3 }).unwrap();
        assert_eq!(accounts, vec![1, 2, 3]);
        let answered = Event::CallAnswered { call: 4, by: "sip:carol@desk".into(), account_id: Some(3), at: 12 };
        assert_eq!(t.translate(&answered).unwrap().2["call_id"], "c4");
        let record = sambung_pbx::CallRecord {
            call: 4,
            call_id: "c4".into(),
            caller: "alice".into(),
            callee: "bob".into(),
            caller_device: None,
            callee_device: None,
            started_at: 10,
            answered_at: Some(12),
            ended_at: 20,
            duration_secs: 8,
            cause_code: 200,
            cause_reason: "OK".into(),
            hangup_side: "callee",
            answered_by: None,
            forwards: Vec::new(),
        };
        let (kind, accounts, data) = t.translate(&Event::CallEnded(record)).unwrap();
        assert_eq!(
            (kind, accounts, &data["result"], &data["duration_secs"]),
            ("call.ended", vec![1, 2, 3], &json!("answered"), &json!(8))
        );
        assert!(t.calls.is_empty(), "the call is forgotten");
        // An event of an unknown call says nothing.
        assert!(t.translate(&Event::CallRinging { call: 9, target: "x".into(), target_id: 5 }).is_none());
    }
}
