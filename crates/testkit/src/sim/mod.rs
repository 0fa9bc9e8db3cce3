//! A whole server and its phones on the virtual clock: scripted [`Phone`]s, call control
//! ([`Pbx`]) and its media sessions, a store and applications, all exchanging datagrams over
//! one seeded [`Network`].
//!
//! The [`World`] owns everything and runs it: [`World::run_until`] moves the clock to the
//! earliest thing due (a datagram's arrival, a timer of call control, a media session's tick, a
//! phone's retransmission or 20 ms frame), hands it over, and carries every output on: SIP and
//! RTP onto the network, media commands to the media runtime ([`MediaRuntime`]), store writes to
//! the [`Store`], applications' frames and keys to an [`Application`] or the test (see
//! [`apps`]), domain events into a list. The same seed gives the same run, datagram for
//! datagram.
//!
//! ```
//! use sambung_pbx::registrar::Routing;
//! use sambung_testkit::phone::PhoneEvent;
//! use sambung_testkit::sim::World;
//! use std::time::Duration;
//!
//! let mut world = World::new(1, World::lossy_network());
//! world.add_user("alice", 500.0, Routing::default());
//! world.act("alice", |phone, now| phone.register(now));
//! assert!(world.run_until(Duration::from_secs(30), |w| w.phone("alice").is_registered()));
//! assert!(world.phone("alice").saw(|e| *e == PhoneEvent::Registered));
//! ```

pub mod apps;
mod media;
mod store;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sambung_pbx::registrar::{Account, Accounts, Routing};
use sambung_pbx::{AppEnd, AppRequest, Event, Inbound, Input, MediaCommand, Now, Output, Pbx, PbxConfig};
use sambung_sip::Transport;
use sambung_sip::digest::{self, Algorithm};

pub use apps::{AppCall, AppFactory, AppIo, AppStart, Application};
pub use media::{MediaRuntime, MediaStats, SimSession};
pub use store::{KeptMessage, Store};

use crate::phone::{Phone, PhoneConfig};
use crate::{Clock, NetConfig, NetStats, Network, Rng};

/// The server's address: SIP on port 5060, media ports above 20000.
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

/// The server's SIP address.
pub const SERVER: SocketAddr = SocketAddr::new(SERVER_IP, 5060);

/// The domain and digest realm of the simulated server.
pub const DOMAIN: &str = "sambung.test";

/// Unix time at the world's start.
const UNIX_START: u64 = 1_700_000_000;

/// Most steps at one instant before the world is declared stuck (a timer that never moves on).
const MAX_SPINS: u32 = 100_000;

/// The simulated server and its phones. See the [module docs](self).
pub struct World {
    clock: Clock,
    net: Network,
    /// Call control's shards, each fed what the server's driver would feed it.
    pbx: Vec<Pbx>,
    pbx_deadline: Vec<Option<Instant>>,
    /// Inputs waiting, with their shard (`None`: every shard).
    pending: VecDeque<(Option<usize>, Input)>,
    media: MediaRuntime,
    store: Store,
    accounts: Vec<Account>,
    phones: Vec<Phone>,
    apps: std::collections::BTreeMap<u64, AppCall>,
    factory: Option<AppFactory>,
    events: Vec<(Duration, Event)>,
    /// Presence from the events, as the server's presence service keeps it.
    presence: sambung_pbx::presence::Board,
    seed: u64,
    undeliverable: u64,
    out: Vec<(SocketAddr, SocketAddr, Bytes)>,
    /// What the simulated DNS answers for each host name ([`World::dns`]).
    dns: std::collections::BTreeMap<String, Vec<sambung_dns::Target>>,
    /// Every lookup call control asked for, in order.
    lookups: Vec<sambung_dns::Query>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("elapsed", &self.clock.elapsed())
            .field("phones", &self.phones.iter().map(Phone::user).collect::<Vec<_>>())
            .field("net", &self.net.stats())
            .field("media", &self.media.stats())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl World {
    /// A world whose network behaves as `net`, everything seeded from `seed`, and call control
    /// with its defaults for [`DOMAIN`] at [`SERVER`].
    pub fn new(seed: u64, net: NetConfig) -> World {
        World::with_config(seed, net, World::config())
    }

    /// The configuration of the simulated server: [`DOMAIN`], listening on [`SERVER`], media
    /// on [`SERVER_IP`].
    pub fn config() -> PbxConfig {
        PbxConfig {
            domains: vec![DOMAIN.into()],
            realm: DOMAIN.into(),
            listen: vec![SERVER],
            media_address: Some(SERVER_IP),
            ..PbxConfig::default()
        }
    }

    /// A world with call control configured as `config` (its media address is where the
    /// media runtime's ports are; keep [`SERVER`] among its listening addresses).
    pub fn with_config(seed: u64, net: NetConfig, config: PbxConfig) -> World {
        World::sharded(seed, net, config, 1)
    }

    /// A world whose call control runs on `shards` shards, each message handed to the shard
    /// its Call-ID names, as the server does ([`sambung_pbx::shard`]).
    pub fn sharded(seed: u64, net: NetConfig, config: PbxConfig, shards: usize) -> World {
        let mut rng = Rng::new(seed ^ 0x5EED_0F0A_11AB);
        let media_ip = config.media_address.unwrap_or(SERVER_IP);
        let secret = b"the simulated server's secret..";
        let pbx = if shards <= 1 {
            vec![Pbx::new(config, secret, rng.bytes::<32>())]
        } else {
            Pbx::sharded(&config, secret, rng.bytes::<32>(), shards)
        };
        World {
            clock: Clock::new(),
            net: Network::new(net, seed),
            pbx_deadline: vec![None; pbx.len()],
            pbx,
            pending: VecDeque::new(),
            media: MediaRuntime::new(media_ip, rng.next_u64()),
            store: Store::default(),
            accounts: Vec::new(),
            phones: Vec::new(),
            apps: std::collections::BTreeMap::new(),
            factory: None,
            events: Vec::new(),
            presence: sambung_pbx::presence::Board::new(),
            seed,
            undeliverable: 0,
            out: Vec::new(),
            dns: std::collections::BTreeMap::new(),
            lookups: Vec::new(),
        }
    }

    /// Makes the simulated DNS answer lookups of `host` with `targets` (in that order, as an
    /// RFC 3263 resolution would give them); other names are not found.
    pub fn dns(&mut self, host: &str, targets: Vec<sambung_dns::Target>) {
        self.dns.insert(host.to_ascii_lowercase(), targets);
    }

    /// Every DNS lookup call control asked for so far.
    pub fn lookups(&self) -> &[sambung_dns::Query] {
        &self.lookups
    }

    /// The network of the whole-call tests: 5 % loss, 5 % duplicated, 10 % held back 30 ms so
    /// that later datagrams overtake them, 10–20 ms one way.
    pub fn lossy_network() -> NetConfig {
        NetConfig {
            loss: 0.05,
            duplicate: 0.05,
            reorder: 0.1,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(10),
            reorder_delay: Duration::from_millis(30),
        }
    }

    // ---- setting up ----

    /// Adds an account `name` (password `<name>-secret`, extension `100<id>`) with `routing`;
    /// returns its id.
    pub fn add_account(&mut self, name: &str, routing: Routing) -> i64 {
        let id = self.accounts.len() as i64 + 1;
        let password = format!("{name}-secret");
        self.accounts.push(Account {
            id,
            username: name.into(),
            display_name: name.into(),
            extension: Some(format!("100{id}")),
            realm: DOMAIN.into(),
            ha1_md5: digest::ha1(Algorithm::Md5, name, DOMAIN, &password),
            ha1_sha256: digest::ha1(Algorithm::Sha256, name, DOMAIN, &password),
            disabled: false,
            routing,
        });
        self.push_accounts();
        id
    }

    /// Changes the routing of account `name`, as the store would after a settings change.
    pub fn set_routing(&mut self, name: &str, routing: Routing) {
        if let Some(account) = self.accounts.iter_mut().find(|a| a.username == name) {
            account.routing = routing;
        }
        self.push_accounts();
    }

    fn push_accounts(&mut self) {
        let accounts = Accounts::new(self.accounts.iter().cloned());
        self.input(Input::Accounts(accounts));
    }

    /// Adds a phone.
    pub fn add_phone(&mut self, config: PhoneConfig) {
        self.phones.push(Phone::new(config));
    }

    /// Adds account `name` with `routing` and its phone at `10.0.0.<n>` (in the order users are
    /// added), saying a tone of `tone_hz`.
    pub fn add_user(&mut self, name: &str, tone_hz: f64, routing: Routing) -> i64 {
        let id = self.add_account(name, routing);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, self.phones.len() as u8 + 1));
        let mut config = PhoneConfig::new(name, ip, SERVER, DOMAIN);
        config.tone_hz = tone_hz;
        config.seed ^= self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
        self.add_phone(config);
        id
    }

    /// Applications for the calls call control hands to one: `factory` makes one per call
    /// (`None`: the test drives that call itself).
    pub fn on_app(&mut self, factory: impl FnMut(&AppStart) -> Option<Box<dyn Application>> + 'static) {
        self.factory = Some(Box::new(factory));
    }

    // ---- reading ----

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Virtual time since the world began.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    pub fn phone(&self, name: &str) -> &Phone {
        self.phones.iter().find(|p| p.user() == name).unwrap_or_else(|| panic!("no phone {name}"))
    }

    pub fn phone_mut(&mut self, name: &str) -> &mut Phone {
        self.phones.iter_mut().find(|p| p.user() == name).unwrap_or_else(|| panic!("no phone {name}"))
    }

    /// Does something with phone `name` now; what it sends goes out at once.
    pub fn act<R>(&mut self, name: &str, f: impl FnOnce(&mut Phone, Instant) -> R) -> R {
        let now = self.now();
        let result = f(self.phone_mut(name), now);
        self.flush_phones();
        result
    }

    /// The domain events, with when they happened.
    pub fn events(&self) -> &[(Duration, Event)] {
        &self.events
    }

    pub fn net_stats(&self) -> NetStats {
        self.net.stats()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn media(&self) -> &MediaRuntime {
        &self.media
    }

    pub fn shards(&self) -> &[Pbx] {
        &self.pbx
    }

    /// Calls in progress on every shard.
    pub fn calls_in_progress(&self) -> usize {
        self.pbx.iter().map(Pbx::calls_in_progress).sum()
    }

    /// The first shard of call control.
    pub fn pbx(&self) -> &Pbx {
        &self.pbx[0]
    }

    /// The calls answered by an application, by call.
    pub fn apps(&self) -> &std::collections::BTreeMap<u64, AppCall> {
        &self.apps
    }

    pub fn app(&self, call: u64) -> Option<&AppCall> {
        self.apps.get(&call)
    }

    /// Datagrams that reached an address nobody has.
    pub fn undeliverable(&self) -> u64 {
        self.undeliverable
    }

    /// The run in text: every domain event and every phone event with its time, then the
    /// network's counters. Two runs of one seed give the same transcript.
    pub fn transcript(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.events.iter().map(|(at, event)| format!("{:>8} pbx {event:?}", at.as_millis())).collect();
        for phone in &self.phones {
            for (at, event) in phone.events() {
                lines.push(format!("{:>8} {} {event:?}", self.clock.offset(*at).as_millis(), phone.user()));
            }
        }
        lines.push(format!("net {:?}", self.net.stats()));
        lines.push(format!("media {:?}", self.media.stats()));
        lines
    }

    // ---- driving ----

    /// Feeds call control an input now (accounts, an application's end ...).
    pub fn input(&mut self, input: Input) {
        self.queue(input);
        self.pump();
    }

    /// Queues an input for the shard the server's driver would give it to.
    fn queue(&mut self, input: Input) {
        let count = self.pbx.len();
        let changes = match &input {
            Input::Accounts(accounts) => self.presence.set_accounts(accounts),
            Input::Bindings(bindings) => self.presence.set_bindings(bindings),
            _ => Vec::new(),
        };
        if !changes.is_empty() {
            self.pending.push_back((None, Input::Presence(changes)));
        }
        let shard = match &input {
            Input::Message(inbound) | Input::FramingError(inbound, _) => {
                Some(sambung_pbx::shard_of(&inbound.bytes, count))
            }
            Input::Media(event) => Some(Pbx::shard_of_call(event.session(), count)),
            Input::AppEnded { call, .. }
            | Input::AppConnect { call, .. }
            | Input::PickUp { call, .. }
            | Input::RecordCall { call }
            | Input::EndCall { call }
            | Input::KeyframeWanted { call, .. }
            | Input::TransferCall { call, .. }
            | Input::Originate { id: call, .. } => Some(Pbx::shard_of_call(*call, count)),
            Input::Resolved { lookup, .. } => Some(lookup.shard(count)),
            // shared by the shards: given once
            Input::Store(_)
            | Input::Bindings(_)
            | Input::Guard { .. }
            | Input::Deliver { .. }
            | Input::Unregister { .. } => Some(0),
            Input::Timeout => unreachable!("timeouts are given to the shard whose timer is due"),
            Input::Disconnected { .. }
            | Input::Unreachable { .. }
            | Input::Accounts(_)
            | Input::Mailboxes(_)
            | Input::Presence(_) => None,
        };
        self.pending.push_back((shard, input));
    }

    /// Plays one frame into the application leg of `call` (a test acting as the application).
    pub fn app_play(&mut self, call: u64, frame: &[i16]) -> bool {
        let played = self.media.app_play(call, frame);
        if played && let Some(app) = self.apps.get_mut(&call) {
            app.played += 1;
        }
        played
    }

    /// Ends the application's call `call` (a test acting as the application).
    pub fn app_end(&mut self, call: u64, end: AppEnd) {
        if let Some(app) = self.apps.get_mut(&call) {
            app.ended.get_or_insert(end.clone());
        }
        self.input(Input::AppEnded { call, end });
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Runs until `done` holds (checked after every step) or `limit` of virtual time has
    /// passed; true when `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) -> bool {
        let deadline = self.now() + limit;
        let mut spins = 0;
        loop {
            self.flush_phones();
            if done(self) {
                return true;
            }
            let next = self.next_wakeup().filter(|&at| at <= deadline);
            let Some(at) = next else {
                self.clock.advance_to(deadline);
                self.step();
                return done(self);
            };
            if at <= self.now() {
                spins += 1;
                assert!(spins < MAX_SPINS, "the world is stuck at {:?}: {self:?}", self.elapsed());
            } else {
                spins = 0;
            }
            self.clock.advance_to(at);
            self.step();
        }
    }

    /// The earliest instant something is due.
    fn next_wakeup(&self) -> Option<Instant> {
        let phones = self.phones.iter().filter_map(Phone::poll_timeout).min();
        let pbx = self.pbx_deadline.iter().flatten().min().copied();
        [self.net.next_delivery(), pbx, self.media.poll_timeout(), phones].into_iter().flatten().min()
    }

    /// Everything due now: arrivals, then call control's timers, the sessions' ticks and the
    /// phones' timers.
    fn step(&mut self) {
        let now = self.now();
        while let Some(datagram) = self.net.poll_delivery(now) {
            self.deliver(now, datagram.from, datagram.to, datagram.payload);
        }
        for shard in 0..self.pbx.len() {
            if self.pbx_deadline[shard].is_some_and(|at| at <= now) {
                self.pending.push_back((Some(shard), Input::Timeout));
                self.pump();
            }
        }
        if self.media.poll_timeout().is_some_and(|at| at <= now) {
            self.media.handle_timeout(now, &mut self.out);
            self.after_media();
        }
        for phone in &mut self.phones {
            if phone.poll_timeout().is_some_and(|at| at <= now) {
                phone.handle_timeout(now);
            }
        }
        self.flush_phones();
    }

    fn deliver(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, payload: Bytes) {
        if to == SERVER {
            let inbound = Inbound {
                transport: Transport::Udp,
                local: SERVER,
                remote: from,
                conn: None,
                account: None,
                bytes: payload,
            };
            return self.input(Input::Message(inbound));
        }
        if to.ip() == self.media.ip() {
            self.media.receive(now, from, to, &payload, &mut self.out);
            return self.after_media();
        }
        match self.phones.iter_mut().find(|p| p.owns(to)) {
            Some(phone) => phone.handle_datagram(now, from, to, payload),
            None => self.undeliverable += 1,
        }
    }

    /// Sends what the media runtime made and hands its sessions' events on.
    fn after_media(&mut self) {
        let now = self.now();
        for (from, to, payload) in self.out.drain(..) {
            self.net.send(from, to, payload, now);
        }
        for (session, side, event) in self.media.poll_events() {
            use sambung_media::session::SessionEvent;
            let Some(app) = self.apps.get_mut(&session) else { continue };
            let io = match event {
                SessionEvent::AppAudio { samples, .. } if side == Some(sambung_pbx::Side::B) => app.hear(&samples),
                SessionEvent::Key { key, .. } if side == Some(sambung_pbx::Side::A) => app.key(key),
                _ => None,
            };
            if let Some(io) = io {
                self.app_io(session, io);
            }
        }
    }

    /// Carries out what an application did, then runs call control on it.
    fn app_io(&mut self, call: u64, io: AppIo) {
        self.queue_app_io(call, io);
        self.pump();
    }

    /// Carries out what an application did; what is for call control waits in the pending
    /// inputs.
    fn queue_app_io(&mut self, call: u64, io: AppIo) {
        for frame in &io.play {
            self.app_play(call, frame);
        }
        let elapsed = self.clock.elapsed();
        self.events.extend(io.events.into_iter().map(|event| (elapsed, event)));
        for input in io.inputs {
            self.queue(input);
        }
        if let Some(end) = io.end
            && let Some(app) = self.apps.get_mut(&call)
            && app.ended.is_none()
        {
            app.ended = Some(end.clone());
            self.queue(Input::AppEnded { call, end });
        }
    }

    /// Puts what the phones want to send on the network.
    fn flush_phones(&mut self) {
        let now = self.now();
        for phone in &mut self.phones {
            while let Some((from, to, payload)) = phone.poll_transmit() {
                self.net.send(from, to, payload, now);
            }
        }
    }

    /// Runs call control on the pending inputs and carries its outputs on.
    fn pump(&mut self) {
        while let Some((shard, input)) = self.pending.pop_front() {
            match shard {
                Some(shard) => self.run_shard(shard, input),
                None => {
                    for shard in 0..self.pbx.len() {
                        let input = match &input {
                            Input::Accounts(accounts) => Input::Accounts(accounts.clone()),
                            Input::Mailboxes(counts) => Input::Mailboxes(counts.clone()),
                            Input::Presence(changes) => Input::Presence(changes.clone()),
                            Input::Disconnected { conn } => Input::Disconnected { conn: *conn },
                            _ => unreachable!("only these go to every shard"),
                        };
                        self.run_shard(shard, input);
                    }
                }
            }
        }
    }

    /// Runs one shard of call control on `input` and carries its outputs on.
    fn run_shard(&mut self, shard: usize, input: Input) {
        {
            let now = self.now();
            let unix_secs = UNIX_START + self.clock.elapsed().as_secs();
            self.pbx[shard].handle_input(input, Now { instant: now, unix_secs });
            loop {
                match self.pbx[shard].poll_output() {
                    Output::Transmit(t) => {
                        self.net.send(t.local.unwrap_or(SERVER), t.remote, t.bytes, now);
                    }
                    Output::Media(command) => self.media_command(command),
                    Output::App(request) => self.app_request(request),
                    Output::Resolve { lookup, query } => {
                        let result = self
                            .dns
                            .get(&query.host.to_ascii_lowercase())
                            .cloned()
                            .ok_or_else(|| "not found".to_owned());
                        self.lookups.push(query);
                        self.queue(Input::Resolved { lookup, result });
                    }
                    Output::Store(write) => {
                        if let Some(reply) = self.store.apply(write) {
                            self.queue(Input::Store(reply));
                        }
                    }
                    Output::Event(event) => {
                        let changes = self.presence.apply(&event);
                        if !changes.is_empty() {
                            self.pending.push_back((None, Input::Presence(changes)));
                        }
                        self.events.push((self.clock.elapsed(), event));
                    }
                    Output::Timeout(at) => {
                        self.pbx_deadline[shard] = at;
                        break;
                    }
                }
            }
        }
    }

    fn media_command(&mut self, command: MediaCommand) {
        if let MediaCommand::AttachApp { session, format, rate } = &command {
            self.apps.insert(*session, AppCall::new(*session, format.clone(), *rate));
        }
        if let Some(event) = self.media.command(self.now(), command) {
            self.queue(Input::Media(event));
        }
    }

    fn app_request(&mut self, request: AppRequest) {
        match request {
            AppRequest::Start { call, app, caller, rate } => {
                let format = self.apps.get(&call).map(|a| a.format.clone());
                let start = AppStart { call, app, caller, rate, format };
                let handler = self.factory.as_mut().and_then(|make| make(&start));
                let entry = self.apps.entry(call).or_insert_with(|| {
                    let format = start.format.clone().unwrap_or_else(pcmu);
                    AppCall::new(call, format, rate)
                });
                entry.start = Some(start);
                entry.handler = handler;
            }
            AppRequest::Key { call, key } => {
                // Called while call control's outputs are drained: what the application asks of
                // it is fed after this input.
                if let Some(io) = self.apps.get_mut(&call).and_then(|app| app.key(key)) {
                    self.queue_app_io(call, io);
                }
            }
            AppRequest::Stop { call } => {
                if let Some(app) = self.apps.get_mut(&call) {
                    app.stop();
                }
            }
            // The simulated applications never connect their callers.
            AppRequest::ConnectFailed { .. } => {}
        }
    }
}

/// PCMU without events: the format of an application started without `AttachApp`.
fn pcmu() -> sambung_media::negotiate::Negotiated {
    use sambung_media::negotiate::{Negotiated, PayloadFormat};
    let audio = PayloadFormat { codec: sambung_media::codec::CodecKind::Pcmu, payload_type: 0, fmtp: None };
    Negotiated { audio, telephone_event: None }
}
