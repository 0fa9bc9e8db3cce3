//! Call queues: callers wait with music, told their position, until an agent is free; the
//! agent is chosen by the queue's strategy (longest idle, round robin, fewest calls) and rung
//! through call control (`agent:USER:SECONDS`, [`CallIo::connect`]). An agent who does not
//! answer, is busy or declines rests a few seconds while the caller keeps its place; one who
//! finished a queue call has its wrap-up time before the next. Agents log in and out with
//! `*45` / `*46` (kept in the store) and are in at first.
//!
//! [`Queues`] is shared by every shard's applications: the waiting callers in order, the
//! agents' states and the statistics. It hears the domain events ([`Queues::run`]): a device
//! answering a queue call makes its agent busy, the call's end starts the wrap-up, and a caller
//! who hangs up while waiting is counted as abandoned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sambung_pbx::{AppEnd, Caller, Event as DomainEvent};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::prompts::{self, Prompt};
use super::{Audio, CallIo, Connect, Context, Played};

/// How long an agent who did not take a queue call is passed over.
pub const REST: Duration = Duration::from_secs(5);
/// How much music is played between two looks at the queue.
const MUSIC_CHUNK_MS: usize = 1000;

/// How a queue picks the agent for its next caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The agent idle the longest (since its last queue call ended, or since it logged in).
    LongestIdle,
    /// Each call to the agent after the one who got the previous call, in the listed order.
    RoundRobin,
    /// The agent who took the fewest calls (the longest idle among equals).
    FewestCalls,
}

impl Strategy {
    pub fn parse(text: &str) -> Option<Strategy> {
        match text.to_ascii_lowercase().as_str() {
            "longest-idle" | "longest-idle-agent" | "lia" => Some(Strategy::LongestIdle),
            "round-robin" | "roundrobin" | "rrmemory" => Some(Strategy::RoundRobin),
            "fewest-calls" | "fewestcalls" => Some(Strategy::FewestCalls),
            _ => None,
        }
    }
}

/// One queue's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    pub strategy: Strategy,
    /// Usernames, lower-case, in order.
    pub agents: Vec<String>,
    /// How long an agent rings for one caller.
    pub ring: Duration,
    /// After a queue call, how long before the agent gets the next one.
    pub wrap_up: Duration,
    /// How long a caller waits at most before `on_timeout`.
    pub max_wait: Duration,
    /// How often a waiting caller hears its position again.
    pub announce_every: Duration,
    /// Where a caller goes after `max_wait`: a target for call control (`voicemail:USER`, a
    /// username, group, number ...); `None`: goodbye.
    pub on_timeout: Option<String>,
    /// Where key 1 sends a waiting caller to leave a message (`voicemail:USER`); `None`: key 1
    /// does nothing.
    pub message: Option<String>,
}

impl QueueConfig {
    /// A queue of `agents` with the usual settings (15 s rings, 10 s wrap-up), for tests.
    #[cfg(test)]
    pub(crate) fn sample(name: &str, agents: &[&str]) -> QueueConfig {
        QueueConfig {
            name: name.into(),
            strategy: Strategy::LongestIdle,
            agents: agents.iter().map(|a| (*a).to_owned()).collect(),
            ring: Duration::from_secs(15),
            wrap_up: Duration::from_secs(10),
            max_wait: Duration::from_secs(300),
            announce_every: Duration::from_secs(30),
            on_timeout: None,
            message: None,
        }
    }
}

/// An agent's state, across its queues.
#[derive(Clone, Debug)]
struct Agent {
    logged_in: bool,
    /// Since when it has been free of queue calls.
    idle_since: Instant,
    calls: u32,
    /// Rung for this caller now.
    ringing: Option<u64>,
    /// In this queue call now.
    on_call: Option<u64>,
    /// Wrap-up (or rest after not taking a call) until then.
    away_until: Option<Instant>,
}

/// One waiting caller.
#[derive(Clone, Debug)]
struct Waiting {
    call: u64,
    joined: Instant,
}

/// A queue's figures since the server started.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Callers an agent answered.
    pub answered: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Callers who waited the longest allowed and were sent on.
    pub timed_out: u64,
    /// Callers who left a message instead of waiting.
    pub messages: u64,
    /// Total wait of the answered callers, milliseconds.
    #[serde(skip)]
    wait_total_ms: u64,
    /// Longest wait of an answered caller, seconds.
    pub longest_wait_secs: u64,
}

#[derive(Debug, Default)]
struct QueueState {
    waiting: Vec<Waiting>,
    stats: Stats,
    /// Round robin: the index (in the agents' list) of the agent who got the previous call.
    last: Option<usize>,
}

#[derive(Debug)]
struct State {
    queues: HashMap<String, QueueState>,
    agents: HashMap<String, Agent>,
    /// Calls an agent is rung for or answered: call → (queue, agent, when the caller joined).
    offered: HashMap<u64, (String, String, Instant)>,
}

/// A queue as the API and the app show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    pub name: String,
    pub strategy: Strategy,
    /// Callers waiting now.
    pub waiting: usize,
    /// How long the first of them has waited, seconds.
    pub oldest_wait_secs: u64,
    /// Average wait of the answered callers, seconds.
    pub average_wait_secs: f64,
    pub stats: Stats,
    pub agents: Vec<AgentView>,
}

/// An agent as the API and the app show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    pub username: String,
    pub logged_in: bool,
    /// `idle`, `ringing`, `on-call`, `wrap-up` or `logged-out`.
    pub state: &'static str,
    pub calls: u32,
    /// Seconds since its last queue call ended (or it logged in), while idle.
    pub idle_secs: u64,
}

/// The server's queues. Cheap to clone: every shard's applications share one.
#[derive(Clone, Debug)]
pub struct Queues {
    configs: Arc<[QueueConfig]>,
    state: Arc<Mutex<State>>,
    /// The music on hold in chunks of [`MUSIC_CHUNK_MS`], each a WAV file.
    music: Arc<[Arc<[u8]>]>,
}

impl Default for Queues {
    fn default() -> Queues {
        Queues::new(Vec::new(), &[], None, Instant::now())
    }
}

impl Queues {
    /// The queues of `configs`; the agents in `logged_out` start logged out, the others in.
    /// `music` (8 kHz samples) is what waiting callers hear.
    pub fn new(configs: Vec<QueueConfig>, logged_out: &[String], music: Option<&[i16]>, now: Instant) -> Queues {
        let mut agents = HashMap::new();
        for name in configs.iter().flat_map(|q| &q.agents) {
            let logged_in = !logged_out.iter().any(|out| out.eq_ignore_ascii_case(name));
            agents.entry(name.clone()).or_insert(Agent {
                logged_in,
                idle_since: now,
                calls: 0,
                ringing: None,
                on_call: None,
                away_until: None,
            });
        }
        let queues = configs.iter().map(|q| (q.name.clone(), QueueState::default())).collect();
        let music = music.map(music_chunks).unwrap_or_default();
        Queues {
            configs: configs.into(),
            state: Arc::new(Mutex::new(State { queues, agents, offered: HashMap::new() })),
            music: music.into(),
        }
    }

    /// The music on hold, in chunks of a second, each a WAV file.
    pub fn music(&self) -> Arc<[Arc<[u8]>]> {
        self.music.clone()
    }

    pub fn config(&self, name: &str) -> Option<&QueueConfig> {
        self.configs.iter().find(|q| q.name.eq_ignore_ascii_case(name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Caller `call` joins queue `name`: its position (1 for the first).
    pub fn join(&self, name: &str, call: u64, now: Instant) -> usize {
        let mut state = self.lock();
        let Some(queue) = state.queues.get_mut(name) else { return 0 };
        if !queue.waiting.iter().any(|w| w.call == call) {
            queue.waiting.push(Waiting { call, joined: now });
        }
        queue.waiting.iter().position(|w| w.call == call).map_or(0, |p| p + 1)
    }

    /// Where caller `call` is in queue `name` (1 for the first), if it waits there.
    pub fn position(&self, name: &str, call: u64) -> Option<usize> {
        let state = self.lock();
        state.queues.get(name)?.waiting.iter().position(|w| w.call == call).map(|p| p + 1)
    }

    /// The agent to ring for caller `call` now, if it is the first caller of queue `name` and
    /// an agent is free: chosen by the queue's strategy and held for it until
    /// [`Self::refused`] or the call's answer or end.
    pub fn offer(&self, name: &str, call: u64, now: Instant) -> Option<String> {
        let config = self.config(name)?;
        let mut state = self.lock();
        let State { queues, agents, offered } = &mut *state;
        let queue = queues.get_mut(name)?;
        let first = queue.waiting.first()?;
        if first.call != call || offered.contains_key(&call) {
            return None;
        }
        let joined = first.joined;
        let free = |agent: &Agent| {
            agent.logged_in
                && agent.ringing.is_none()
                && agent.on_call.is_none()
                && agent.away_until.is_none_or(|until| until <= now)
        };
        let candidates: Vec<(usize, &String)> =
            config.agents.iter().enumerate().filter(|(_, name)| agents.get(*name).is_some_and(free)).collect();
        let chosen = match config.strategy {
            Strategy::LongestIdle => candidates.iter().min_by_key(|(i, n)| (agents[*n].idle_since, *i)),
            Strategy::FewestCalls => {
                candidates.iter().min_by_key(|(i, n)| (agents[*n].calls, agents[*n].idle_since, *i))
            }
            Strategy::RoundRobin => {
                let count = config.agents.len();
                let start = queue.last.map_or(0, |last| (last + 1) % count.max(1));
                candidates.iter().min_by_key(|(i, _)| (i + count - start) % count.max(1))
            }
        };
        let &(index, agent) = chosen?;
        let agent = agent.clone();
        queue.last = Some(index);
        if let Some(state) = agents.get_mut(&agent) {
            state.ringing = Some(call);
        }
        offered.insert(call, (name.to_owned(), agent.clone(), joined));
        info!(queue = name, call, agent, "queue offers the caller to an agent");
        Some(agent)
    }

    /// The agent rung for `call` did not take it (`status`): it rests, the caller keeps its
    /// place.
    pub fn refused(&self, call: u64, status: u16, now: Instant) {
        let mut state = self.lock();
        let Some((queue, agent, _)) = state.offered.remove(&call) else { return };
        if let Some(agent) = state.agents.get_mut(&agent) {
            agent.ringing = None;
            agent.away_until = Some(now + REST);
        }
        debug!(queue, call, agent, status, "the agent did not take the call");
    }

    /// A device answered `call` (from the domain events): if an agent was rung for it, the
    /// caller leaves the queue and the agent is in the call.
    pub fn answered(&self, call: u64, now: Instant) {
        let mut state = self.lock();
        let State { queues, agents, offered } = &mut *state;
        let Some((queue, agent, joined)) = offered.get(&call).cloned() else { return };
        if let Some(agent) = agents.get_mut(&agent)
            && agent.ringing == Some(call)
        {
            agent.ringing = None;
            agent.on_call = Some(call);
        }
        if let Some(queue) = queues.get_mut(&queue) {
            queue.waiting.retain(|w| w.call != call);
            let waited = now.saturating_duration_since(joined);
            queue.stats.answered += 1;
            queue.stats.wait_total_ms += waited.as_millis() as u64;
            queue.stats.longest_wait_secs = queue.stats.longest_wait_secs.max(waited.as_secs());
        }
        info!(queue, call, agent, "queue call answered");
    }

    /// Call `call` ended (from the domain events): its agent starts its wrap-up; a caller who
    /// was still waiting abandoned.
    pub fn ended(&self, call: u64, now: Instant) {
        let mut state = self.lock();
        let State { queues, agents, offered } = &mut *state;
        if let Some((queue, agent, _)) = offered.remove(&call) {
            let wrap_up = self.config(&queue).map_or(Duration::ZERO, |q| q.wrap_up);
            if let Some(agent) = agents.get_mut(&agent) {
                if agent.on_call == Some(call) {
                    agent.on_call = None;
                    agent.calls += 1;
                    agent.idle_since = now;
                    agent.away_until = Some(now + wrap_up);
                } else if agent.ringing == Some(call) {
                    agent.ringing = None;
                }
            }
        }
        for (name, queue) in queues.iter_mut() {
            let before = queue.waiting.len();
            queue.waiting.retain(|w| w.call != call);
            if queue.waiting.len() < before {
                queue.stats.abandoned += 1;
                info!(queue = name, call, "caller hung up while waiting");
            }
        }
    }

    /// Call `call` is no longer the agent's (an application took it over: the agent transferred
    /// the caller to a queue, a menu or a parking slot): the agent starts its wrap-up.
    pub fn handed_on(&self, call: u64, now: Instant) {
        let mut state = self.lock();
        let State { agents, offered, .. } = &mut *state;
        let Some((queue, agent, _)) = offered.get(&call).cloned() else { return };
        let Some(agent_state) = agents.get_mut(&agent) else { return };
        if agent_state.on_call != Some(call) {
            return;
        }
        offered.remove(&call);
        agent_state.on_call = None;
        agent_state.calls += 1;
        agent_state.idle_since = now;
        agent_state.away_until = Some(now + self.config(&queue).map_or(Duration::ZERO, |q| q.wrap_up));
        info!(queue, call, agent, "the agent handed the caller on");
    }

    /// Caller `call` leaves queue `name` without an agent: `timed_out` (waited the longest
    /// allowed), else to leave a message.
    pub fn leave(&self, name: &str, call: u64, timed_out: bool) {
        let mut state = self.lock();
        if let Some(queue) = state.queues.get_mut(name) {
            queue.waiting.retain(|w| w.call != call);
            if timed_out {
                queue.stats.timed_out += 1;
            } else {
                queue.stats.messages += 1;
            }
        }
    }

    /// The queues `username` is an agent of.
    pub fn queues_of(&self, username: &str) -> Vec<String> {
        self.configs.iter().filter(|q| q.agents.iter().any(|a| a == username)).map(|q| q.name.clone()).collect()
    }

    /// Whether agent `username` is logged in; `None` when it is no queue's agent.
    pub fn is_logged_in(&self, username: &str) -> Option<bool> {
        self.lock().agents.get(username).map(|a| a.logged_in)
    }

    /// Logs agent `username` in or out of its queues; false when it is no queue's agent.
    pub fn set_login(&self, username: &str, logged_in: bool, now: Instant) -> bool {
        let mut state = self.lock();
        let Some(agent) = state.agents.get_mut(username) else { return false };
        if logged_in && !agent.logged_in {
            agent.idle_since = now;
        }
        agent.logged_in = logged_in;
        info!(agent = username, logged_in, "queue agent");
        true
    }

    /// Every queue with its callers, figures and agents.
    pub fn views(&self, now: Instant) -> Vec<QueueView> {
        let state = self.lock();
        self.configs
            .iter()
            .map(|config| {
                let queue = state.queues.get(&config.name);
                let stats = queue.map(|q| q.stats.clone()).unwrap_or_default();
                let average = if stats.answered == 0 {
                    0.0
                } else {
                    (stats.wait_total_ms as f64 / stats.answered as f64 / 100.0).round() / 10.0
                };
                let oldest = queue
                    .and_then(|q| q.waiting.first())
                    .map_or(0, |w| now.saturating_duration_since(w.joined).as_secs());
                let agents = config
                    .agents
                    .iter()
                    .filter_map(|name| {
                        let agent = state.agents.get(name)?;
                        let away = agent.away_until.is_some_and(|until| until > now);
                        let state = match () {
                            _ if !agent.logged_in => "logged-out",
                            _ if agent.on_call.is_some() => "on-call",
                            _ if agent.ringing.is_some() => "ringing",
                            _ if away => "wrap-up",
                            _ => "idle",
                        };
                        let idle_secs =
                            if state == "idle" { now.saturating_duration_since(agent.idle_since).as_secs() } else { 0 };
                        Some(AgentView {
                            username: name.clone(),
                            logged_in: agent.logged_in,
                            state,
                            calls: agent.calls,
                            idle_secs,
                        })
                    })
                    .collect();
                QueueView {
                    name: config.name.clone(),
                    strategy: config.strategy,
                    waiting: queue.map_or(0, |q| q.waiting.len()),
                    oldest_wait_secs: oldest,
                    average_wait_secs: average,
                    stats,
                    agents,
                }
            })
            .collect()
    }

    /// Follows the domain events: answers and ends of queue calls.
    pub async fn run(self, mut events: mpsc::UnboundedReceiver<crate::events::Shared>) {
        while let Some(event) = events.recv().await {
            match &*event {
                DomainEvent::CallAnswered { call, account_id: Some(_), .. } => self.answered(*call, Instant::now()),
                DomainEvent::CallAnswered { call, account_id: None, .. } => self.handed_on(*call, Instant::now()),
                DomainEvent::CallEnded(record) => self.ended(record.call, Instant::now()),
                _ => {}
            }
        }
    }
}

/// 8 kHz music cut into WAV files of [`MUSIC_CHUNK_MS`] each.
fn music_chunks(samples: &[i16]) -> Vec<Arc<[u8]>> {
    let per_chunk = 8 * MUSIC_CHUNK_MS;
    samples
        .chunks(per_chunk)
        .filter_map(|chunk| {
            let mut file = Vec::new();
            let mut recorder = sambung_media::wav::WavRecorder::new(std::io::Cursor::new(&mut file), 8000).ok()?;
            recorder.write(chunk).ok()?;
            recorder.finalize().ok()?;
            Some(Arc::from(file))
        })
        .collect()
}

/// Runs queue `name` for caller `caller` (call `call`) until an agent answers, the caller
/// hangs up or leaves a message, or it has waited the longest allowed.
pub async fn run(context: &Context, io: &mut impl CallIo, name: &str, call: u64, caller: &Caller) -> AppEnd {
    let queues = context.queues.clone();
    let Some(config) = queues.config(name).cloned() else {
        warn!(queue = name, "no such queue");
        io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
        return AppEnd::Hangup;
    };
    let joined = Instant::now();
    let position = queues.join(&config.name, call, joined);
    info!(queue = config.name, caller = caller.username, position, "caller queued");
    let ring_secs = config.ring.as_secs().max(1);
    let mut announced: Option<Instant> = None;
    let mut chunk = 0usize;
    loop {
        if let Some(agent) = queues.offer(&config.name, call, Instant::now()) {
            match io.connect(&format!("agent:{agent}:{ring_secs}")).await {
                Connect::Over => return AppEnd::Hangup,
                Connect::Failed(status) => queues.refused(call, status, Instant::now()),
            }
            continue;
        }
        let now = Instant::now();
        if now.saturating_duration_since(joined) >= config.max_wait {
            info!(queue = config.name, call, "waited the longest allowed");
            queues.leave(&config.name, call, true);
            return match &config.on_timeout {
                Some(target) => match io.connect(target).await {
                    Connect::Over => AppEnd::Hangup,
                    Connect::Failed(_) => goodbye(io).await,
                },
                None => goodbye(io).await,
            };
        }
        if announced.is_none_or(|at| now.saturating_duration_since(at) >= config.announce_every) {
            announced = Some(now);
            let Some(position) = queues.position(&config.name, call) else { continue };
            info!(queue = config.name, call, position, "position announced");
            let mut said = vec![Audio::Prompt(Prompt::YouAreCaller)];
            said.extend(prompts::count(position as u32).into_iter().map(Audio::Prompt));
            if config.message.is_some() {
                said.push(Audio::Prompt(Prompt::QueueMessage));
            }
            match io.play(&said, true).await {
                Played::Hangup => return AppEnd::Hangup,
                Played::Key(_) | Played::Done => {}
            }
        }
        let played = match queues.music.get(chunk % queues.music.len().max(1)) {
            Some(music) => {
                chunk += 1;
                io.play(&[Audio::Wav(music)], true).await
            }
            // No music: a second of silence, still listening for keys.
            None => match io.wait_key(Duration::from_secs(1)).await {
                super::Wait::Key(key) => Played::Key(key),
                super::Wait::Timeout => Played::Done,
                super::Wait::Hangup => Played::Hangup,
            },
        };
        match played {
            Played::Hangup => return AppEnd::Hangup,
            Played::Key(key) => {
                io.clear_keys();
                if let (Some(message), '1') = (&config.message, key) {
                    info!(queue = config.name, call, "caller leaves a message");
                    queues.leave(&config.name, call, false);
                    return match io.connect(message).await {
                        Connect::Over => AppEnd::Hangup,
                        Connect::Failed(_) => goodbye(io).await,
                    };
                }
            }
            Played::Done => {}
        }
    }
}

async fn goodbye(io: &mut impl CallIo) -> AppEnd {
    io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
    AppEnd::Hangup
}

/// `*45` / `*46`: the caller logs in to its queues, or out; kept in the store.
pub async fn login(context: &Context, io: &mut impl CallIo, caller: &Caller, logged_in: bool) -> AppEnd {
    let prompt = if context.queues.set_login(&caller.username, logged_in, Instant::now()) {
        if let Err(error) = context.store.set_agent_login(caller.account_id, logged_in).await {
            warn!(agent = caller.username, %error, "agent login not stored");
        }
        if logged_in { Prompt::AgentLoggedIn } else { Prompt::AgentLoggedOut }
    } else {
        Prompt::InvalidCode
    };
    io.play(&[Audio::Prompt(prompt)], false).await;
    AppEnd::Hangup
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(strategy: Strategy) -> QueueConfig {
        QueueConfig { strategy, ..QueueConfig::sample("support", &["bob", "carol", "dave"]) }
    }

    #[test]
    fn the_longest_idle_agent_gets_the_first_caller_and_wrap_up_holds_an_agent_back() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let queues = Queues::new(vec![queue(Strategy::LongestIdle)], &["dave".into()], None, t0);
        assert_eq!(queues.join("support", 1, at(1)), 1);
        assert_eq!(queues.join("support", 2, at(2)), 2);
        assert_eq!(queues.offer("support", 2, at(2)), None, "only the first caller is offered an agent");
        // bob and carol are idle since the start, dave logged out: bob, first listed.
        assert_eq!(queues.offer("support", 1, at(2)).as_deref(), Some("bob"));
        assert_eq!(queues.offer("support", 1, at(2)), None, "one agent at a time per caller");
        queues.answered(1, at(5));
        assert_eq!(queues.position("support", 2), Some(1));
        // Caller 2: carol (bob is in a call).
        assert_eq!(queues.offer("support", 2, at(6)).as_deref(), Some("carol"));
        queues.answered(2, at(7));
        // bob's call ends at 20: wrap-up until 30. carol's at 22.
        queues.ended(1, at(20));
        queues.ended(2, at(22));
        queues.join("support", 3, at(25));
        assert_eq!(queues.offer("support", 3, at(25)), None, "both in wrap-up");
        // At 31 bob (idle since 20) is the longest idle; carol is still wrapping up until 32.
        assert_eq!(queues.offer("support", 3, at(31)).as_deref(), Some("bob"));
        // bob does not answer: he rests, and carol (free at 32) gets the caller.
        queues.refused(3, 480, at(46));
        assert_eq!(queues.offer("support", 3, at(47)).as_deref(), Some("carol"));
        // dave logs in: idle since now, so the last choice of the three.
        queues.set_login("dave", true, at(48));
        let views = queues.views(at(50));
        let stats = &views[0].stats;
        assert_eq!((stats.answered, stats.abandoned), (2, 0));
        assert_eq!(views[0].average_wait_secs, 4.5, "waits of 4 s and 5 s");
        let states: Vec<_> = views[0].agents.iter().map(|a| (a.username.as_str(), a.state, a.calls)).collect();
        assert_eq!(states, [("bob", "wrap-up", 1), ("carol", "ringing", 1), ("dave", "idle", 0)]);
    }

    #[test]
    fn round_robin_and_fewest_calls_choose_as_they_say() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut config = queue(Strategy::RoundRobin);
        config.wrap_up = Duration::ZERO;
        let queues = Queues::new(vec![config.clone()], &[], None, t0);
        let mut got = Vec::new();
        for call in 1..=4 {
            queues.join("support", call, at(call));
            got.push(queues.offer("support", call, at(call)).unwrap());
            queues.answered(call, at(call));
            queues.ended(call, at(call));
        }
        assert_eq!(got, ["bob", "carol", "dave", "bob"]);
        config.strategy = Strategy::FewestCalls;
        let queues = Queues::new(vec![config], &[], None, t0);
        // bob takes two calls, carol one: dave (none) next, then carol.
        for (call, agent) in [(1, "bob"), (2, "carol"), (3, "dave")] {
            queues.join("support", call, at(call));
            assert_eq!(queues.offer("support", call, at(call)).as_deref(), Some(agent));
            queues.answered(call, at(call));
            queues.ended(call, at(10 + call));
        }
        queues.join("support", 4, at(20));
        assert_eq!(queues.offer("support", 4, at(20)).as_deref(), Some("bob"), "all took one: longest idle");
        queues.answered(4, at(20));
        queues.ended(4, at(21));
        queues.join("support", 5, at(22));
        assert_eq!(queues.offer("support", 5, at(22)).as_deref(), Some("carol"));
    }

    #[test]
    fn an_agent_who_hands_the_caller_on_is_free_after_the_wrap_up_and_the_caller_can_queue_again() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let queues = Queues::new(vec![queue(Strategy::LongestIdle)], &[], None, t0);
        queues.join("support", 1, at(1));
        assert_eq!(queues.offer("support", 1, at(1)).as_deref(), Some("bob"));
        queues.answered(1, at(2));
        // bob transfers the caller to the queue again: his call is over, the caller queues anew.
        queues.handed_on(1, at(30));
        assert_eq!(queues.join("support", 1, at(30)), 1);
        assert_eq!(queues.offer("support", 1, at(30)).as_deref(), Some("carol"), "bob wraps up until 40");
        let views = queues.views(at(31));
        assert_eq!((views[0].agents[0].state, views[0].agents[0].calls), ("wrap-up", 1));
    }

    #[test]
    fn a_caller_who_hangs_up_while_waiting_is_counted_as_abandoned() {
        let t0 = Instant::now();
        let queues =
            Queues::new(vec![queue(Strategy::LongestIdle)], &["bob".into(), "carol".into(), "dave".into()], None, t0);
        queues.join("support", 1, t0);
        queues.join("support", 2, t0);
        assert_eq!(queues.offer("support", 1, t0), None, "everyone logged out");
        queues.ended(1, t0 + Duration::from_secs(40));
        queues.leave("support", 2, true);
        let views = queues.views(t0 + Duration::from_secs(41));
        assert_eq!((views[0].stats.abandoned, views[0].stats.timed_out, views[0].waiting), (1, 1, 0));
        assert!(queues.set_login("bob", true, t0));
        assert!(!queues.set_login("mallory", true, t0), "not an agent");
    }
}
