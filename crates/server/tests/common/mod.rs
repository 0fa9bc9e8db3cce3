//! Test harness: runs the built `sambung` binary on 127.0.0.1 with free ports and a temporary
//! configuration, and talks SIP to it.
#![allow(dead_code)] // each test file uses a part of it

pub mod capture;
pub mod cli;
pub mod clients;
pub mod linphone;
pub mod scripts;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sambung_sip::{Message, Response};

/// Ports of one running server.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub udp: u16,
    pub tcp: u16,
    pub tls: u16,
    pub ws: u16,
    pub wss: u16,
}

/// A running `sambung serve`; killed and cleaned up on drop.
pub struct Server {
    child: Option<Child>,
    pub ports: Ports,
    /// The address every transport listens on (127.0.0.1 unless started with [`Server::start_on`]).
    pub host: IpAddr,
    pub dir: PathBuf,
    /// Remove `dir` on drop (not when the caller chose it).
    owns_dir: bool,
    log: Arc<Mutex<String>>,
}

/// The repository's shared test material (`../shared` from the repository root).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sambung-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// The ports the tests hand to the programs they run (the servers' SIP listeners and relay
/// ranges, SIPp's and baresip's SIP, media and control ports): 10000-31999, below the kernel's
/// ephemeral range (32768-60999 here), so no port-0 bind anywhere on the machine lands in it.
const PORT_BAND: (u16, u16) = (10_000, 32_000);
/// The band is cut into windows of this many ports; a test process claims whole windows.
const PORT_WINDOW: u16 = 100;

/// This process's claimed windows and the next port not yet handed out.
struct PortAllocator {
    /// One TCP listener on the first port of each window this process claimed: while it is
    /// held, no other test process (parallel test binaries, nextest's process per test) can
    /// claim that window. The claims end with the process. No test program binds TCP on a
    /// window's first port, since ports are handed out from the third one on.
    claims: Vec<TcpListener>,
    /// The next port to hand out and the end (exclusive) of the current window.
    next: u16,
    end: u16,
}

static PORTS: Mutex<PortAllocator> = Mutex::new(PortAllocator { claims: Vec::new(), next: 0, end: 0 });

impl PortAllocator {
    /// Claims a window no other test process holds, starting the search at a window picked
    /// from the process id so that parallel processes rarely race for the same one.
    fn claim_window(&mut self) {
        let windows = (PORT_BAND.1 - PORT_BAND.0) / PORT_WINDOW;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let start = (std::process::id().wrapping_mul(7919) ^ nanos) % u32::from(windows);
        for k in 0..u32::from(windows) {
            let window = ((start + k) % u32::from(windows)) as u16;
            let base = PORT_BAND.0 + window * PORT_WINDOW;
            if self.claims.iter().any(|c| c.local_addr().is_ok_and(|a| a.port() == base)) {
                continue;
            }
            if let Ok(claim) = TcpListener::bind(("127.0.0.1", base)) {
                self.claims.push(claim);
                self.next = base + 2;
                self.end = base + PORT_WINDOW;
                return;
            }
        }
        panic!(
            "every window of test ports in {}-{} is claimed by other test processes ({} held by this one)",
            PORT_BAND.0,
            PORT_BAND.1 - 1,
            self.claims.len()
        );
    }
}

/// `count` consecutive ports on 127.0.0.1 (at most 98), the first one even, each free for both
/// UDP and TCP right now, and never handed to anything else by this test process or by any other
/// test process running at the same time (see [`PortAllocator`]). Returns the first.
pub fn port_block(count: u16) -> u16 {
    assert!((1..=PORT_WINDOW - 2).contains(&count), "a block of {count} ports does not fit a window");
    let mut ports = PORTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..1000 {
        let first = ports.next + ports.next % 2;
        if ports.end == 0 || first + count > ports.end {
            ports.claim_window();
            continue;
        }
        ports.next = first + count;
        // Some program outside the tests may hold a port of the band: skip past it.
        if (first..first + count)
            .all(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok())
        {
            return first;
        }
    }
    panic!("no {count} free ports in a row found in the test port band");
}

/// One port on 127.0.0.1 free for both TCP and UDP, handed to nothing else (see [`port_block`]).
pub fn free_port() -> u16 {
    port_block(1)
}

impl Server {
    /// Starts a server with every transport on 127.0.0.1 and `extra` appended to the config
    /// (top-level keys first, then tables), and waits until it answers OPTIONS.
    pub fn start(extra: &str) -> Server {
        let mut server = Server::start_in(temp_dir("server"), extra);
        server.owns_dir = true;
        server
    }

    /// Like [`Server::start`] in `dir`, which is removed with the server.
    pub fn start_owning(dir: PathBuf, extra: &str) -> Server {
        let mut server = Server::start_in(dir, extra);
        server.owns_dir = true;
        server
    }

    /// Like [`Server::start_owning`] with every transport on `host` (such as `::1`).
    pub fn start_on(host: IpAddr, dir: PathBuf, extra: &str) -> Server {
        let mut server = Server::start_in_on(host, dir, extra);
        server.owns_dir = true;
        server
    }

    /// Like [`Server::start`] in a directory the caller keeps (its `data` subdirectory is the
    /// data_dir).
    pub fn start_in(dir: PathBuf, extra: &str) -> Server {
        Server::start_in_on(IpAddr::V4(Ipv4Addr::LOCALHOST), dir, extra)
    }

    fn start_in_on(host: IpAddr, dir: PathBuf, extra: &str) -> Server {
        // Real ports in the configuration, as an operator writes it (with port 0 the server would
        // not know its own ports: it takes them from the configuration to tell its own URIs).
        let first = port_block(5);
        let ports = Ports { udp: first, tcp: first + 1, tls: first + 2, ws: first + 3, wss: first + 4 };
        let config = format!(
            "data_dir = {data:?}\n{extra}\n\
             [log]\nlevel = \"debug\"\n\
             [listen]\nudp = [\"{}\"]\ntcp = [\"{}\"]\ntls = [\"{}\"]\n\
             ws = [\"{}\"]\nwss = [\"{}\"]\n",
            SocketAddr::new(host, ports.udp),
            SocketAddr::new(host, ports.tcp),
            SocketAddr::new(host, ports.tls),
            SocketAddr::new(host, ports.ws),
            SocketAddr::new(host, ports.wss),
            data = dir.join("data").display().to_string(),
        );
        let config_path = dir.join("sambung.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sambung"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sambung");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server { child: Some(child), ports, host, dir, owns_dir: false, log };
        server.wait_ready();
        server
    }

    /// Waits until the server says `Sambung is ready` and answers OPTIONS over UDP. The log
    /// line matters: the server answers on UDP before it has installed its SIGTERM handler
    /// (that happens right after the line), and a SIGTERM before then kills it unclean.
    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind(SocketAddr::new(self.host, 0)).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 65535];
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("sambung exited early with {status}; log:\n{}", self.log());
            }
            if !self.log().contains("Sambung is ready") {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let request = options(self.udp_addr(), "UDP", socket.local_addr().unwrap(), "ready");
            socket.send_to(&request, self.udp_addr()).unwrap();
            if socket.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("sambung did not say it was ready and answer OPTIONS within 30 s; log:\n{}", self.log());
    }

    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.ports.udp)
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.ports.tcp)
    }

    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.ports.tls)
    }

    /// The server's certificate (generated in its data directory).
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("data/tls/cert.pem")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        // The shell's own `kill`: no procps needed, and no unsafe code in the test.
        let status = Command::new("sh").arg("-c").arg(format!("kill -TERM {}", self.pid())).status().expect("run sh");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An OPTIONS request to `target` from `from` over `transport`, told apart by `call_id`.
pub fn options(target: SocketAddr, transport: &str, from: SocketAddr, call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {from};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{target}>\r\n\
         From: <sip:tester@127.0.0.1>;tag=t-{call_id}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Parses bytes the server sent as a response.
pub fn response(bytes: &[u8]) -> Response {
    match Message::parse(Bytes::copy_from_slice(bytes)) {
        Ok(Message::Response(r)) => r,
        other => panic!("not a response: {other:?}\n{}", String::from_utf8_lossy(bytes)),
    }
}

/// The status code of a response, read from its status line only: answers to malformed
/// requests copy the broken header lines, so they need not parse as a whole.
pub fn status_of(bytes: &[u8]) -> u16 {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split(' ');
    assert_eq!(parts.next(), Some("SIP/2.0"), "not a response: {}", String::from_utf8_lossy(bytes));
    parts.next().and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("bad status line {text:?}"))
}

/// True when the message carries `Call-ID: call_id`.
/// How many call-control shards the servers of the torture tests run: more than the cores of a
/// small machine, so that their messages spread.
#[allow(dead_code)]
pub const PROBED_SHARDS: usize = 3;

/// The `[limits]` table that gives a server [`PROBED_SHARDS`] shards (put it last in `extra`).
#[allow(dead_code)]
pub fn probed_shards() -> String {
    format!("[limits]\nshards = {PROBED_SHARDS}\n")
}

/// A probe's Call-ID that goes to the shard `message` goes to, so that each shard answering in
/// order, the probe's answer comes after the message's (different shards answer in no order
/// between them).
#[allow(dead_code)]
pub fn probe_id(base: &str, message: &[u8]) -> String {
    format!("{base}~{}", sambung_pbx::shard_of(message, PROBED_SHARDS))
}

pub fn has_call_id(bytes: &[u8], call_id: &str) -> bool {
    let needle = format!("\r\nCall-ID: {call_id}\r\n");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads from a blocking stream until one whole SIP message is buffered; returns it, or
/// `None` on EOF, reset or timeout. Leftover bytes stay in `buf`.
pub fn read_message(stream: &mut impl std::io::Read, buf: &mut Vec<u8>, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(n)) = sambung_sip::frame_stream(buf, sambung_sip::MAX_MESSAGE_SIZE) {
            return Some(buf.drain(..n).collect());
        }
        if Instant::now() >= deadline {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
}
