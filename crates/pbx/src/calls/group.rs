//! A call to a ring group ([`crate::groups`]): its members' devices ring all at once or one
//! member at a time, within the group's time, then the group's fallback takes the call.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::CallEnv;
use super::call::{Call, State};
use super::route::Cause;
use crate::apps::App;
use crate::events::Event;
use crate::groups::{Fallback, Strategy};
use crate::pbx::Ctx;

/// A group call's progress.
#[derive(Debug)]
pub(crate) struct GroupRing {
    pub group: usize,
    /// The members (usernames) not rung yet, in order; all at once for a simultaneous group.
    queue: VecDeque<String>,
    /// When the whole group's time is over; set when the first member rings.
    ends: Option<Instant>,
}

impl GroupRing {
    /// A call to group `group`: its members in their order for this call (round robin: from
    /// after the member who started the previous one).
    pub(crate) fn start(env: &CallEnv<'_>, group: usize) -> GroupRing {
        let config = &env.config.groups.groups[group];
        let count = config.members.len();
        let order: Vec<usize> = match config.strategy {
            Strategy::RoundRobin => env.turns.lock().next_order(group, count),
            Strategy::Simultaneous | Strategy::Sequential => (0..count).collect(),
        };
        let queue = order.into_iter().filter_map(|i| config.members.get(i).cloned()).collect();
        GroupRing { group, queue, ends: None }
    }
}

impl Call {
    /// Rings the group's next member (or, for a simultaneous group, every member); the
    /// fallback when none is left or the group's time is over.
    pub(super) fn ring_group(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        let Some(ring) = self.group.as_mut() else { return };
        let Some(group) = env.config.groups.groups.get(ring.group) else { return };
        let now = ctx.now.instant;
        let ends = *ring.ends.get_or_insert(now + Duration::from_secs(u64::from(group.timeout_secs)));
        if now >= ends {
            return self.group_fallback(ctx, env);
        }
        let members: Vec<String> = match group.strategy {
            Strategy::Simultaneous => ring.queue.drain(..).collect(),
            Strategy::Sequential | Strategy::RoundRobin => {
                // The next member who can take a call.
                let mut next = Vec::new();
                while let Some(member) = ring.queue.pop_front() {
                    if can_ring(env, group.skip_busy, &member) {
                        next.push(member);
                        break;
                    }
                }
                next
            }
        };
        let members: Vec<String> = members.into_iter().filter(|m| can_ring(env, group.skip_busy, m)).collect();
        if members.is_empty() {
            return self.group_fallback(ctx, env);
        }
        let turn = match group.strategy {
            Strategy::Simultaneous => ends - now,
            Strategy::Sequential | Strategy::RoundRobin => {
                Duration::from_secs(u64::from(group.ring_secs)).min(ends - now)
            }
        };
        self.start_ringing(ctx, turn, false, true);
        let mut sent = 0;
        for member in &members {
            let Some(account) = env.accounts.by_username(member).cloned() else { continue };
            sent += self.ring_devices(ctx, env, &account).0;
        }
        debug!(call = self.id, group = group.name, ?members, devices = sent, "group ringing");
        if sent == 0 {
            // Nothing could be sent to them: on to the next.
            return self.ring_group(ctx, env);
        }
        ctx.out.event(Event::CallRinging { call: self.id, target: group.name.clone(), target_id: 0 });
    }

    /// The member (or members) rung now did not take the call: the next, or the fallback.
    pub(super) fn group_next(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        if let State::Ringing(ringing) = &self.state {
            for key in self.pending_forks(ringing.stage) {
                ctx.sip.cancel(key, ctx.now.instant);
            }
        }
        self.ring_group(ctx, env);
    }

    /// Nobody in the group took the call: its fallback does.
    fn group_fallback(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        let Some(ring) = self.group.take() else { return };
        let Some(group) = env.config.groups.groups.get(ring.group) else { return };
        info!(call = self.id, group = group.name, "nobody in the group answered");
        if let State::Ringing(ringing) = &self.state {
            for key in self.pending_forks(ringing.stage) {
                ctx.sip.cancel(key, ctx.now.instant);
            }
        }
        match &group.fallback {
            Fallback::Fail => self.fail(ctx, 480, "Temporarily Unavailable", "system"),
            Fallback::Voicemail(user) => match env.accounts.by_username(user).filter(|a| !a.disabled).cloned() {
                Some(account) => {
                    let name = group.extension.clone().unwrap_or_else(|| group.name.clone());
                    self.target = account.clone();
                    let app = App::Voicemail { account_id: account.id, name };
                    self.start_app(ctx, env, app, (480, "Temporarily Unavailable", "system"));
                }
                None => self.fail(ctx, 480, "Temporarily Unavailable", "system"),
            },
            Fallback::Forward(target) => self.forward(ctx, env, target.clone(), Cause::NoAnswer),
        }
    }
}

/// True when `member` may ring now: an enabled account with a device online, not in
/// do-not-disturb, and (with `skip_busy`) not in a call.
fn can_ring(env: &CallEnv<'_>, skip_busy: bool, member: &str) -> bool {
    let Some(account) = env.accounts.by_username(member) else { return false };
    let busy = skip_busy && env.subscriptions.in_call(account.id);
    !(account.disabled || account.routing.dnd || busy || env.location.bindings(account.id).is_empty())
}
