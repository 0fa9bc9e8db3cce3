//! Real SIP clients for end-to-end tests: SIPp scenarios (Debian `sip-tester`) and baresip
//! softphones (Debian `baresip`), run against a `sambung serve` whose accounts were made with
//! `sambung user add` before it started. Everything stays on 127.0.0.1.
//!
//! The tools are installed by scripts/test.sh; when one is missing the test fails and says which
//! Debian package to install (never skips).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Server, free_port, port_block, temp_dir};

// ---------------------------------------------------------------------------------------------
// Tools and the server with accounts
// ---------------------------------------------------------------------------------------------

/// Fails the test with a clear message when `command` cannot be run (scripts/test.sh installs
/// `package`).
pub fn require_tool(command: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {command}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "`{command}` is not installed: install the Debian package `{package}` (./scripts/test.sh does)");
}

/// One account to create with `sambung user add`.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    pub name: &'a str,
    pub password: &'a str,
    pub extension: Option<&'a str>,
}

impl<'a> User<'a> {
    pub const fn new(name: &'a str, password: &'a str) -> User<'a> {
        User { name, password, extension: None }
    }
}

/// The realm the test servers use.
pub const REALM: &str = "sambung.test";

/// How many ports a test server's RTP relay gets: 20 RTP/RTCP pairs, more than any test's calls
/// hold at once.
pub const RELAY_PORTS: u16 = 40;

/// The RTP relay's range (min, max) for one test server: ports no other server, phone or test
/// process is given (see [`super::port_block`]).
pub fn server_rtp_range() -> (u16, u16) {
    let first = port_block(RELAY_PORTS);
    (first, first + RELAY_PORTS - 1)
}

/// Configuration keys for a test server: the realm, and the media relay on 127.0.0.1 in `rtp`.
pub fn server_config(rtp: (u16, u16)) -> String {
    format!(
        "realm = \"{REALM}\"\n\
         [media]\naddress = \"127.0.0.1\"\nrtp_port_min = {}\nrtp_port_max = {}\n",
        rtp.0, rtp.1
    )
}

/// Starts a server with `extra` in its configuration (see [`Server::start`]) whose database
/// already holds `users`: the accounts are made by running `sambung user add` against the same
/// configuration (same data directory, realm and database) before `sambung serve` starts.
pub fn server_with_users(extra: &str, users: &[User<'_>]) -> Server {
    Server::start_owning(server_dir_with_users(extra, users), extra)
}

/// Runs `sambung user add NAME --password PW [--extension EXT] --config FILE`.
pub fn add_user(config: &Path, user: &User<'_>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sambung"));
    command.args(["user", "add", user.name, "--password", user.password]);
    if let Some(extension) = user.extension {
        command.args(["--extension", extension]);
    }
    let out =
        command.arg("--config").arg(config).env_remove("RUST_LOG").stdin(Stdio::null()).output().expect("run sambung");
    assert!(
        out.status.success(),
        "`sambung user add {} --password {} --config {}` failed ({}):\n{}{}",
        user.name,
        user.password,
        config.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `done` every 20 ms until it returns true or `limit` passes; returns whether it did.
pub fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `limit` for `child` to exit; kills it when it does not.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let mut status = None;
    poll_until(limit, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Collects a child's output into `log`, line by line, on a thread.
pub fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
            log.lock().unwrap().push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}

// ---------------------------------------------------------------------------------------------
// SIPp
// ---------------------------------------------------------------------------------------------

/// A scenario file of tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// A base for SIPp's media ports: SIPp binds it and the port 2 above it (audio and "video") and
/// gives up when the second is taken, so both (and the RTCP ports above them) must be free: four
/// ports of the test band, the first even (see [`super::port_block`]).
pub fn sipp_media_port() -> u16 {
    port_block(4)
}

/// How to run one SIPp scenario.
#[derive(Debug, Clone)]
pub struct Sipp {
    pub scenario: String,
    /// The server to send to; `None` for a scenario that starts by receiving (UAS).
    pub remote: Option<SocketAddr>,
    /// Local SIP port (UDP).
    pub port: u16,
    /// Local address SIPp sends from (`-i`): 127.0.0.1 unless a test needs a source of its own
    /// (any 127.0.0.0/8 address is this machine's).
    pub local_ip: String,
    /// `-m`: how many calls before SIPp exits (1 unless told).
    pub calls: u32,
    /// Further command-line arguments (`-r`, `-inf`, `-d`, `-trace_stat` ...).
    pub args: Vec<String>,
    /// `-s`: the user part of the Request-URI ([service]).
    pub service: String,
    /// `-au` / `-ap`: the credentials [authentication] answers challenges with.
    pub auth: Option<(String, String)>,
    /// `-set NAME VALUE`: global variables the scenario declares.
    pub vars: Vec<(String, String)>,
    /// SIPp's own `-timeout` (counted as a failure); the test waits a little longer.
    pub timeout: Duration,
    /// Working directory (files named in the scenario are relative to it; traces go there).
    pub dir: PathBuf,
}

impl Sipp {
    pub fn new(scenario: &str, port: u16) -> Sipp {
        Sipp {
            scenario: scenario.to_owned(),
            remote: None,
            port,
            local_ip: "127.0.0.1".to_owned(),
            calls: 1,
            args: Vec::new(),
            service: "service".to_owned(),
            auth: None,
            vars: Vec::new(),
            timeout: Duration::from_secs(20),
            dir: temp_dir("sipp"),
        }
    }

    /// Sends to `server` over UDP.
    pub fn to(mut self, server: &Server) -> Sipp {
        self.remote = Some(server.udp_addr());
        self
    }

    pub fn service(mut self, user: &str) -> Sipp {
        self.service = user.to_owned();
        self
    }

    pub fn auth(mut self, user: &str, password: &str) -> Sipp {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    pub fn var(mut self, name: &str, value: impl ToString) -> Sipp {
        self.vars.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Sipp {
        self.timeout = timeout;
        self
    }

    /// Sends from `ip` (a 127.0.0.0/8 address) instead of 127.0.0.1.
    pub fn source_ip(mut self, ip: &str) -> Sipp {
        self.local_ip = ip.to_owned();
        self
    }

    /// Runs `calls` calls (`-m`) instead of one.
    pub fn calls(mut self, calls: u32) -> Sipp {
        self.calls = calls;
        self
    }

    /// Adds command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Sipp {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Starts SIPp for one call (`-m 1`; see [`Sipp::calls`]).
    pub fn spawn(self) -> SippProcess {
        require_tool("sipp", "sip-tester");
        let name = self.scenario.trim_end_matches(".xml").to_owned();
        let messages = self.dir.join(format!("{name}-messages.log"));
        let errors = self.dir.join(format!("{name}-errors.log"));
        let logs = self.dir.join(format!("{name}-logs.log"));
        let mut command = Command::new("sipp");
        if let Some(remote) = self.remote {
            command.arg(remote.to_string());
        }
        command
            .arg("-sf")
            .arg(scenario(&self.scenario))
            .args(["-t", "u1", "-m", &self.calls.to_string(), "-nostdin", "-aa"])
            .args(["-i", &self.local_ip, "-p", &self.port.to_string()])
            // SIPp binds media (-mp, -mp+2) and control sockets whatever the scenario: keep them
            // on loopback and off fixed ports so that tests can run side by side.
            .args(["-mi", "127.0.0.1", "-mp", &sipp_media_port().to_string()])
            .args(["-ci", "127.0.0.1", "-cp", &free_port().to_string()])
            .args(["-s", &self.service])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs()), "-timeout_error"])
            .args(["-trace_msg", "-message_file"])
            .arg(&messages)
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(["-trace_logs", "-log_file"])
            .arg(&logs);
        if let Some((user, password)) = &self.auth {
            command.args(["-au", user, "-ap", password]);
        }
        for (name, value) in &self.vars {
            command.args(["-set", name, value]);
        }
        command.args(&self.args);
        let mut child = command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sipp");
        let output = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), output.clone()),
            collect(child.stderr.take().unwrap(), output.clone()),
        ];
        SippProcess { child: Some(child), readers, output, messages, errors, logs, config: self }
    }

    /// Runs the scenario to its end.
    pub fn run(self) -> SippResult {
        self.spawn().wait()
    }
}

/// A SIPp process; killed on drop.
#[derive(Debug)]
pub struct SippProcess {
    child: Option<Child>,
    readers: Vec<JoinHandle<()>>,
    output: Arc<Mutex<String>>,
    messages: PathBuf,
    errors: PathBuf,
    logs: PathBuf,
    pub config: Sipp,
}

impl SippProcess {
    /// The scenario's `<log>` lines so far (-trace_logs).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The messages SIPp received so far (its -trace_msg file, read while it runs).
    pub fn received_so_far(&self) -> Vec<Traced> {
        let so_far = SippResult {
            scenario: self.config.scenario.clone(),
            code: None,
            output: String::new(),
            messages: std::fs::read_to_string(&self.messages).unwrap_or_default(),
            errors: String::new(),
            logs: String::new(),
        };
        so_far.received()
    }

    /// Waits for the end (SIPp's -timeout plus 10 s at most) and collects what it left.
    pub fn wait(mut self) -> SippResult {
        let limit = self.config.timeout + Duration::from_secs(10);
        let mut child = self.child.take().expect("running");
        let status = wait_or_kill(&mut child, limit);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let result = SippResult {
            scenario: self.config.scenario.clone(),
            code: status.and_then(|s| s.code()),
            output: self.output.lock().unwrap().clone(),
            messages: std::fs::read_to_string(&self.messages).unwrap_or_default(),
            errors: std::fs::read_to_string(&self.errors).unwrap_or_default(),
            logs: std::fs::read_to_string(&self.logs).unwrap_or_default(),
        };
        let _ = std::fs::remove_dir_all(&self.config.dir);
        result
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // SAMBUNG_KEEP keeps the traces of a scenario cut short, as it keeps the tests' own.
            if std::env::var_os("SAMBUNG_KEEP").is_none() {
                let _ = std::fs::remove_dir_all(&self.config.dir);
            }
        }
    }
}

/// What one SIPp run left behind.
#[derive(Debug)]
pub struct SippResult {
    pub scenario: String,
    /// Exit code: 0 when every call succeeded; `None` when it was killed.
    pub code: Option<i32>,
    pub output: String,
    /// The -trace_msg file: every message sent and received.
    pub messages: String,
    pub errors: String,
    pub logs: String,
}

/// One message of a SIPp -trace_msg file.
#[derive(Debug, Clone)]
pub struct Traced {
    pub received: bool,
    pub text: String,
}

impl Traced {
    /// The first line: a request line or a status line.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or_default().trim_end()
    }

    /// The status code of a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        let line = self.start_line();
        line.strip_prefix("SIP/2.0 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
    }

    /// The method of a request (from the request line) or of the request a response answers
    /// (from CSeq).
    pub fn method(&self) -> String {
        if self.status().is_none() {
            return self.start_line().split(' ').next().unwrap_or_default().to_owned();
        }
        self.header("CSeq").and_then(|v| v.split_whitespace().nth(1).map(str::to_owned)).unwrap_or_default()
    }

    /// The value of the first header called `name` (case-insensitive; compact forms are not
    /// looked up).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The values of every header called `name`.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or_default();
        head.lines()
            .skip(1)
            .filter_map(|line| {
                let (field, value) = line.split_once(':')?;
                field.trim().eq_ignore_ascii_case(name).then(|| value.trim())
            })
            .collect()
    }

    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default()
    }

    /// The audio connection address and port of an SDP body: (c= address, m=audio port).
    pub fn sdp_audio(&self) -> Option<(String, u16)> {
        sdp_audio(self.body())
    }
}

/// (c= address, m=audio port) of an SDP body; the media-level c= wins over the session one.
pub fn sdp_audio(sdp: &str) -> Option<(String, u16)> {
    let mut address = None;
    let mut port = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("c=IN IP4 ").or_else(|| line.strip_prefix("c=IN IP6 ")) {
            address = Some(rest.split('/').next().unwrap_or(rest).to_owned());
        } else if let Some(rest) = line.strip_prefix("m=audio ") {
            port = rest.split(' ').next().and_then(|p| p.parse().ok());
        }
    }
    Some((address?, port?))
}

impl SippResult {
    /// Every message in the trace, in order.
    pub fn trace(&self) -> Vec<Traced> {
        let mut out = Vec::new();
        for entry in self.messages.split("----------------------------------------------- ").skip(1) {
            let mut lines = entry.splitn(3, '\n');
            let _time = lines.next();
            let kind = lines.next().unwrap_or_default();
            let text = lines.next().unwrap_or_default().trim_start_matches(['\r', '\n']).trim_end_matches('\n');
            out.push(Traced { received: kind.contains("received"), text: text.to_owned() });
        }
        out
    }

    /// The messages SIPp received.
    pub fn received(&self) -> Vec<Traced> {
        self.trace().into_iter().filter(|m| m.received).collect()
    }

    /// The messages SIPp sent.
    pub fn sent(&self) -> Vec<Traced> {
        self.trace().into_iter().filter(|m| !m.received).collect()
    }

    /// Status codes of the responses received, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.received().iter().filter_map(Traced::status).collect()
    }

    /// The last response received to a request of `method` whose status is final (>= 200).
    pub fn final_response(&self, method: &str) -> Option<Traced> {
        self.received().into_iter().rev().find(|m| m.status().is_some_and(|s| s >= 200) && m.method() == method)
    }

    /// Everything about the run, for a failure message.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "sipp {} exit code {:?}\n--- errors ---\n{}\n--- scenario log ---\n{}\n--- messages ---\n{}\n--- output (tail) ---\n{}",
            self.scenario,
            self.code,
            self.errors,
            self.logs,
            self.messages,
            tail(&self.output, 3000)
        );
        out
    }

    /// Asserts exit code 0, with everything the run and the server logged otherwise.
    pub fn assert_success(&self, what: &str, server: &Server) {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: SIPp scenario {} failed\n{}\n--- server log (tail) ---\n{}",
            self.scenario,
            self.describe(),
            tail(&server.log(), 12000)
        );
    }
}

/// The last `n` bytes of `text` (on a character boundary).
pub fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

// ---------------------------------------------------------------------------------------------
// RTP: a phone's media socket in the test, to see what the relay sends and to talk back
// ---------------------------------------------------------------------------------------------

/// One RTP packet as received.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub from: SocketAddr,
    pub payload_type: u8,
    pub sequence: u16,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// A UDP socket on 127.0.0.1 that records every RTP packet it receives and, once given a
/// destination, sends 20 ms PCMU packets there (as a phone does as soon as a call is up).
#[derive(Debug)]
pub struct RtpPeer {
    pub port: u16,
    received: Arc<Mutex<Vec<RtpPacket>>>,
    target: Arc<Mutex<Option<SocketAddr>>>,
    sent: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The SSRC of the packets an [`RtpPeer`] sends.
pub const PEER_SSRC: u32 = 0x5A4B_0001;

impl RtpPeer {
    pub fn bind() -> RtpPeer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind RTP socket");
        socket.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let port = socket.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let sent = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, target, sent, stop) = (received.clone(), target.clone(), sent.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut next_send = Instant::now();
                let mut sequence: u16 = 1000;
                let mut timestamp: u32 = 160_000;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf)
                        && n >= 12
                        && buf[0] >> 6 == 2
                    {
                        received.lock().unwrap().push(RtpPacket {
                            from,
                            payload_type: buf[1] & 0x7f,
                            sequence: u16::from_be_bytes([buf[2], buf[3]]),
                            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
                            payload: buf[12..n].to_vec(),
                        });
                    }
                    let destination = *target.lock().unwrap();
                    if let Some(destination) = destination
                        && Instant::now() >= next_send
                    {
                        let mut packet = Vec::with_capacity(172);
                        packet.extend_from_slice(&[0x80, 0x00]);
                        packet.extend_from_slice(&sequence.to_be_bytes());
                        packet.extend_from_slice(&timestamp.to_be_bytes());
                        packet.extend_from_slice(&PEER_SSRC.to_be_bytes());
                        packet.extend(tone_ulaw(timestamp as usize, 160));
                        let _ = socket.send_to(&packet, destination);
                        sent.fetch_add(1, Ordering::Relaxed);
                        sequence = sequence.wrapping_add(1);
                        timestamp = timestamp.wrapping_add(160);
                        next_send += Duration::from_millis(20);
                    }
                }
            })
        };
        RtpPeer { port, received, target, sent, stop, thread: Some(thread) }
    }

    /// Starts sending to `destination` (the relay's address from the SDP this phone got).
    pub fn send_to(&self, destination: SocketAddr) {
        *self.target.lock().unwrap() = Some(destination);
    }

    pub fn sending(&self) -> bool {
        self.target.lock().unwrap().is_some()
    }

    pub fn sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> Vec<RtpPacket> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// G.711 µ-law encoding of one 16-bit sample.
pub fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// `count` µ-law samples of a rising tone (300 Hz to 3300 Hz over 4 s, repeating), starting at
/// sample `start`: every 20 ms frame differs from every other in a 4 s stretch.
pub fn tone_ulaw(start: usize, count: usize) -> Vec<u8> {
    (start..start + count)
        .map(|n| {
            let t = (n % 32000) as f64 / 8000.0;
            // phase of a linear chirp f(t) = 300 + 750 t
            let phase = 2.0 * std::f64::consts::PI * (300.0 * t + 375.0 * t * t);
            ulaw((phase.sin() * 12000.0) as i16)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Audio files
// ---------------------------------------------------------------------------------------------

/// Speaks `text` with espeak-ng into a 48 kHz mono 16-bit WAV (made with sox), with
/// `before` and `after` seconds of silence around it.
pub fn speech_wav(dir: &Path, name: &str, text: &str, before: f32, after: f32) -> PathBuf {
    require_tool("espeak-ng", "espeak-ng");
    require_tool("sox", "sox");
    let raw = dir.join(format!("{name}-espeak.wav"));
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .output()
        .expect("run espeak-ng");
    assert!(out.status.success(), "espeak-ng failed: {}", String::from_utf8_lossy(&out.stderr));
    let wav = dir.join(format!("{name}.wav"));
    let out = Command::new("sox")
        .arg(&raw)
        .args(["-r", "48000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&wav)
        .args(["pad", &before.to_string(), &after.to_string()])
        .output()
        .expect("run sox");
    assert!(out.status.success(), "sox failed: {}", String::from_utf8_lossy(&out.stderr));
    wav
}

/// `seconds` of silence as a 48 kHz mono 16-bit WAV (made with sox).
pub fn silence_wav(dir: &Path, seconds: f32) -> PathBuf {
    require_tool("sox", "sox");
    let wav = dir.join("silence.wav");
    let out = Command::new("sox")
        .args(["-n", "-r", "48000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&wav)
        .args(["trim", "0", &seconds.to_string()])
        .output()
        .expect("run sox");
    assert!(out.status.success(), "sox failed: {}", String::from_utf8_lossy(&out.stderr));
    wav
}

/// The samples of a 16-bit PCM WAV file (channels interleaved) and its sample rate.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{} is not a WAV file",
        path.display()
    );
    let mut at = 12;
    let mut rate = 0;
    let mut bits = 0;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            bits = u16::from_le_bytes(body[14..16].try_into().unwrap());
        } else if id == b"data" {
            assert_eq!(bits, 16, "{}: only 16-bit PCM is read", path.display());
            let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return (samples, rate);
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// Root mean square of a WAV file's samples (full scale 32768).
pub fn wav_rms(path: &Path) -> f64 {
    rms(&read_wav(path).0)
}

/// Root mean square of 16-bit samples (full scale 32768); 0 for none.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// ITU-T P.862 score of `degraded` against `reference` with ../shared/tools/pesq-score
/// (`mode` "nb" or "wb"). Panics with the tool's output when it cannot score.
pub fn pesq(reference: &Path, degraded: &Path, mode: &str) -> f64 {
    let tool = super::shared_dir().join("tools/pesq-score");
    assert!(tool.exists(), "{} is missing", tool.display());
    let out = Command::new(&tool)
        .arg(reference)
        .arg(degraded)
        .arg(mode)
        .stdin(Stdio::null())
        .output()
        .expect("run pesq-score");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let score = stdout.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    match (out.status.success(), score) {
        (true, Some(score)) => score,
        _ => panic!(
            "pesq-score {} {} {mode} failed ({}): {stdout}{}\n(it needs python3 with venv — Debian python3-venv — and, to build \
             the `pesq` package, gcc and python3-dev)",
            reference.display(),
            degraded.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// baresip
// ---------------------------------------------------------------------------------------------

/// How to start one baresip instance.
#[derive(Debug, Clone)]
pub struct BaresipConfig {
    /// Account user name (also the instance's name in messages).
    pub user: String,
    pub password: String,
    /// The server's UDP port: the account's AOR is sip:USER@127.0.0.1:PORT, so baresip
    /// registers there and sends everything there.
    pub server_port: u16,
    /// Local SIP port (TCP/TLS take the next ones: keep instances ≥ 10 apart).
    pub sip_port: u16,
    /// What the microphone says: a 48 kHz mono 16-bit WAV.
    pub audio: PathBuf,
    /// Local RTP ports.
    pub rtp_ports: (u16, u16),
    /// Lines of the contacts file (the first is the current contact, which `/message` uses).
    pub contacts: Vec<String>,
    /// Commands run at start (`-e`).
    pub commands: Vec<String>,
    /// `-t`: quit after this long.
    pub quit_after: Duration,
    /// The account's `audio_codecs` (`PCMU/8000`, `opus/48000/2` ...).
    pub codecs: String,
    /// Register and call over TLS (to the server's TLS port) instead of UDP.
    pub tls: bool,
    /// The account's `mediaenc` (`srtp-mand` for SDES-SRTP only).
    pub mediaenc: Option<String>,
    /// Load `ctrl_tcp` listening on this port (`sndcode` sends DTMF during a call).
    pub ctrl_port: Option<u16>,
    /// Register with the server (`regint=300`); off for a call without a server.
    pub register: bool,
    /// Video too: VP8 from the fakevideo source (352x288, 25 fps) to its fakevideo display.
    pub video: bool,
    /// Answer incoming calls at once (`answermode=auto`); false: let them ring (`manual`).
    pub auto_answer: bool,
}

impl BaresipConfig {
    pub fn new(user: &str, password: &str, server: &Server, audio: &Path) -> BaresipConfig {
        BaresipConfig::with_ports(user, password, server.ports.udp, baresip_sip_port(), audio, true)
    }

    /// An instance that registers nowhere: its account names its own SIP port, and it is
    /// called, or calls, directly (no server in between).
    pub fn direct(user: &str, audio: &Path) -> BaresipConfig {
        let sip_port = baresip_sip_port();
        BaresipConfig::with_ports(user, "unused", sip_port, sip_port, audio, false)
    }

    fn with_ports(
        user: &str,
        password: &str,
        server_port: u16,
        sip_port: u16,
        audio: &Path,
        register: bool,
    ) -> BaresipConfig {
        BaresipConfig {
            user: user.to_owned(),
            password: password.to_owned(),
            server_port,
            sip_port,
            audio: audio.to_owned(),
            rtp_ports: baresip_rtp_ports(),
            contacts: Vec::new(),
            commands: Vec::new(),
            quit_after: Duration::from_secs(55),
            codecs: "PCMU/8000".to_owned(),
            tls: false,
            mediaenc: None,
            ctrl_port: None,
            register,
            video: false,
            auto_answer: true,
        }
    }
}

/// A SIP port for baresip with the next 9 ports free as well (it binds PORT+1 for TCP/TLS).
pub fn baresip_sip_port() -> u16 {
    port_block(10)
}

/// baresip's RTP ports (min, max): 20 of the test band, for the one call an instance makes.
pub fn baresip_rtp_ports() -> (u16, u16) {
    let first = port_block(20);
    (first, first + 19)
}

/// A running baresip; killed on drop. Its standard input is a pipe, so the stdio module reads
/// commands from [`Baresip::command`] and prints received text messages to the log.
#[derive(Debug)]
pub struct Baresip {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub config: BaresipConfig,
    /// The configuration directory (`-f`).
    pub dir: PathBuf,
    /// Where sndfile writes `dump-*-enc.wav` and `dump-*-dec.wav`.
    pub recordings: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Baresip {
    /// Writes the configuration into `dir` and starts baresip with SIP trace (`-s`).
    pub fn start(dir: &Path, config: BaresipConfig) -> Baresip {
        require_tool("baresip", "baresip");
        std::fs::create_dir_all(dir).unwrap();
        let recordings = dir.join("recordings");
        std::fs::create_dir_all(&recordings).unwrap();
        let mut modules = vec!["stdio.so", "g711.so", "aufile.so", "alsa.so", "sndfile.so"];
        if config.codecs.starts_with("opus") {
            modules.push("opus.so");
        }
        if config.mediaenc.is_some() {
            modules.push("srtp.so");
        }
        if config.video {
            modules.extend(["vp8.so", "fakevideo.so"]);
        }
        let mut text = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{}\n\
             net_interface 127.0.0.1\n\
             rtp_ports {}-{}\n\
             audio_player alsa,null\n\
             audio_alert alsa,null\n\
             audio_source aufile,{}\n\
             ausrc_srate 48000\nauplay_srate 48000\nausrc_channels 1\nauplay_channels 1\n\
             snd_path {}\n\
             module_path /usr/lib/baresip/modules\n",
            config.sip_port,
            config.rtp_ports.0,
            config.rtp_ports.1,
            config.audio.display(),
            recordings.display()
        );
        for module in modules {
            let _ = writeln!(text, "module {module}");
        }
        for module in ["account.so", "contact.so", "menu.so"] {
            let _ = writeln!(text, "module_app {module}");
        }
        if config.video {
            text.push_str(
                "video_source fakevideo,nil\nvideo_display fakevideo,nil\nvideo_size 352x288\nvideo_fps 25\n",
            );
        }
        if let Some(port) = config.ctrl_port {
            let _ = writeln!(text, "module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{port}");
        }
        std::fs::write(dir.join("config"), text).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{}@127.0.0.1:{};transport={}>;auth_pass={};answermode={};regint={};audio_codecs={}{}{}\n",
                config.user,
                config.server_port,
                if config.tls { "tls" } else { "udp" },
                config.password,
                if config.auto_answer { "auto" } else { "manual" },
                if config.register { 300 } else { 0 },
                config.codecs,
                config.mediaenc.as_ref().map(|m| format!(";mediaenc={m}")).unwrap_or_default(),
                if config.video { ";video_codecs=VP8" } else { "" }
            ),
        )
        .unwrap();
        std::fs::write(dir.join("contacts"), config.contacts.join("\n") + "\n").unwrap();
        let _ = std::fs::remove_file(dir.join("current_contact"));
        // baresip prints its SIP trace and received messages with stdio to stdout: through a pipe
        // that would be block-buffered and show up late, so make it line-buffered.
        require_tool("stdbuf", "coreutils");
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", "-eL", "baresip"])
            .arg("-f")
            .arg(dir)
            .arg("-s")
            .arg("-t")
            .arg(config.quit_after.as_secs().to_string());
        for c in &config.commands {
            command.arg("-e").arg(c);
        }
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start baresip");
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), log.clone());
        collect(child.stderr.take().unwrap(), log.clone());
        let stdin = child.stdin.take();
        Baresip { child: Some(child), stdin, config, dir: dir.to_owned(), recordings, log }
    }

    /// Everything it printed so far (SIP trace included).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Types a command (e.g. `/message hello`) as the stdio module reads it.
    pub fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("baresip's stdin");
        stdin
            .write_all(command.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush())
            .expect("write to baresip");
    }

    /// Waits until the log satisfies `done`; returns whether it did within `limit`.
    pub fn wait_for(&mut self, limit: Duration, done: impl Fn(&str) -> bool) -> bool {
        poll_until(limit, || done(&self.log.lock().unwrap()) || self.exited()) && done(&self.log.lock().unwrap())
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The SIP messages it sent and received so far.
    pub fn trace(&self) -> Vec<Traced> {
        if self.config.tls {
            // Over TLS baresip talks from an ephemeral port: what came from the server was received.
            let server = self.config.server_port;
            return sip_trace_by(&self.log(), |from, _| from == server);
        }
        sip_trace(&self.log(), self.config.sip_port)
    }

    /// True once a REGISTER of its was answered 200.
    pub fn registered(&self) -> bool {
        self.trace().iter().any(|m| m.received && m.status() == Some(200) && m.method() == "REGISTER")
    }

    /// Waits up to `limit` for a 200 to its REGISTER.
    pub fn wait_registered(&mut self, limit: Duration) -> bool {
        poll_until(limit, || self.registered() || self.exited()) && self.registered()
    }

    /// The recordings sndfile made, those whose name ends with `suffix` (`-dec.wav`: what it
    /// heard, `-enc.wav`: what it sent).
    pub fn recorded(&self, suffix: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.recordings)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.to_string_lossy().ends_with(suffix));
        files.sort();
        files
    }

    /// Kills it (if still running) and waits.
    pub fn stop(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `keys` as DTMF (RFC 4733) in the call in progress, through `ctrl_tcp`
    /// ([`BaresipConfig::ctrl_port`]). Returns baresip's reply.
    pub fn send_dtmf(&self, keys: &str) -> String {
        let port = self.config.ctrl_port.expect("ctrl_port set in the config");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to ctrl_tcp");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let json = format!("{{\"command\":\"sndcode\",\"params\":\"{keys}\",\"token\":\"dtmf\"}}");
        stream.write_all(format!("{}:{json},", json.len()).as_bytes()).expect("write to ctrl_tcp");
        let mut reply = vec![0u8; 4096];
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match stream.read(&mut reply[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got += n;
                    if String::from_utf8_lossy(&reply[..got]).contains("\"token\":\"dtmf\"") {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&reply[..got]).into_owned()
    }

    /// Closes its standard input and waits up to `limit` for it to quit by itself (`-t`).
    pub fn wait_exit(&mut self, limit: Duration) {
        if let Some(child) = self.child.as_mut() {
            let _ = wait_or_kill(child, limit);
        }
        self.child = None;
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes a test's directory when the test ends, passing or failing (declare it before the
/// phones, so it is dropped after them).
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Panics with `what`, the phones' logs and the server's.
pub fn fail_with_logs(what: &str, phones: &[&Baresip], server: &Server) -> ! {
    let mut text = format!("{what}\n");
    for phone in phones {
        text.push_str(&format!(
            "--- baresip {} log (tail) ---\n{}\n",
            phone.config.user,
            tail(&strip_ansi(&phone.log()), 12000)
        ));
    }
    text.push_str(&format!("--- server log (tail) ---\n{}", tail(&server.log(), 12000)));
    panic!("{text}");
}

/// Starts a phone and waits for its registration (200 to REGISTER).
pub fn start_registered(dir: &Path, config: BaresipConfig, server: &Server) -> Baresip {
    let mut phone = Baresip::start(dir, config);
    if !phone.wait_registered(Duration::from_secs(15)) {
        fail_with_logs(&format!("{} did not register within 15 s", phone.config.user), &[&phone], server);
    }
    phone
}

/// Quits baresip cleanly (so that sndfile closes its WAV files) and waits.
pub fn quit(phone: &mut Baresip) {
    if !phone.exited() {
        phone.command("/quit");
    }
    phone.wait_exit(Duration::from_secs(10));
}

/// The length of a WAV file in seconds.
pub fn wav_seconds(wav: &Path) -> f64 {
    let (samples, rate) = read_wav(wav);
    samples.len() as f64 / f64::from(rate)
}

/// The SIP messages in a baresip `-s` trace, in order. baresip prints each one as
/// `ESC[36;1m#`, `UDP SRC -> DST`, the message, `ESC[;m`; a message counts as received when
/// its destination port is `own_port` (the instance's SIP port).
pub fn sip_trace(log: &str, own_port: u16) -> Vec<Traced> {
    sip_trace_by(log, |_, to| to == own_port)
}

/// [`sip_trace`] where `received(source port, destination port)` tells the direction.
fn sip_trace_by(log: &str, received: impl Fn(u16, u16) -> bool) -> Vec<Traced> {
    let mut out = Vec::new();
    for chunk in log.split("\x1b[36;1m#\n").skip(1) {
        // baresip's other output (stderr, a second pipe, with colours of its own) can land
        // anywhere in the chunk; the message's own lines are the ones that end in CRLF.
        let chunk = strip_ansi(chunk);
        let mut lines = chunk.split_inclusive('\n');
        let Some(addresses) = lines
            .by_ref()
            .find(|l| ["UDP ", "TCP ", "TLS ", "WS ", "WSS "].iter().any(|t| l.starts_with(t)) && l.contains(" -> "))
        else {
            continue;
        };
        let Some((from, to)) = addresses.trim_end().split_once(" -> ") else { continue };
        let is_start = |line: &str| line.starts_with("SIP/2.0 ") || line.trim_end().ends_with(" SIP/2.0");
        let text: String = lines.skip_while(|l| !is_start(l)).filter(|l| l.ends_with("\r\n")).collect();
        let port = |address: &str| address.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0u16);
        out.push(Traced { received: received(port(from), port(to)), text });
    }
    out
}

/// Removes ANSI colour sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Changes `user`'s call settings in the database of the server directory `dir` (before the
/// server starts, or while it runs: it reloads within a second).
pub fn set_call_settings(dir: &Path, user: &str, change: impl FnOnce(&mut sambung_store::CallSettings)) {
    let url = format!("sqlite://{}", dir.join("data").join("sambung.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = sambung_store::Store::open(&url).await.expect("open the test database");
        let account = store.account_by_username(user).await.expect("read the account").expect("the user exists");
        let mut settings = store.call_settings(account.id).await.expect("read the settings");
        change(&mut settings);
        store.set_call_settings(account.id, &settings).await.expect("store the settings");
        store.close().await;
    });
}

/// A server directory with `users` added (and nothing started yet), for settings made before
/// the server starts; start it with [`Server::start_in`].
pub fn server_dir_with_users(extra: &str, users: &[User<'_>]) -> PathBuf {
    let dir = temp_dir("server");
    let config = dir.join("sambung.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n{extra}\n", dir.join("data").display().to_string()))
        .expect("write config");
    for user in users {
        add_user(&config, user);
    }
    dir
}

/// A call between two baresips with no server in between, as in the baseline of
/// ../shared/interop/BARESIP.md: bob listens, alice dials his own SIP port; both speak their
/// files (`tweak` sets codecs); returns both once the call has ended and they have quit (their
/// recordings are complete).
pub fn direct_call(
    dir: &Path,
    alice_audio: &Path,
    bob_audio: &Path,
    tweak: impl Fn(&mut BaresipConfig),
) -> (Baresip, Baresip) {
    let mut bob_config = BaresipConfig::direct("bob", bob_audio);
    tweak(&mut bob_config);
    let bob_port = bob_config.sip_port;
    let mut bob = Baresip::start(&dir.join("bob"), bob_config);
    // bob takes calls once his SIP socket is bound: his log shows the account then.
    assert!(
        bob.wait_for(Duration::from_secs(15), |log| log.contains("Populated 1 account")),
        "bob's baresip did not start: {}",
        tail(&strip_ansi(&bob.log()), 4000)
    );
    let mut alice_config = BaresipConfig::direct("alice", alice_audio);
    tweak(&mut alice_config);
    alice_config.commands.push(format!("/dial sip:bob@127.0.0.1:{bob_port}"));
    let mut alice = Baresip::start(&dir.join("alice"), alice_config);
    let ended = |log: &str| log.contains(" terminated (duration");
    let ok = alice.wait_for(Duration::from_secs(60), ended) && bob.wait_for(Duration::from_secs(10), ended);
    quit(&mut alice);
    quit(&mut bob);
    assert!(
        ok,
        "the direct call did not end within 60 s\n--- alice ---\n{}\n--- bob ---\n{}",
        tail(&strip_ansi(&alice.log()), 6000),
        tail(&strip_ansi(&bob.log()), 6000)
    );
    (alice, bob)
}

/// Creates many accounts at once in the database of the server directory `dir` (which must
/// exist: make it with [`server_dir_with_users`]), for the realm [`REALM`]: one database
/// connection for all of them instead of one `sambung user add` each.
pub fn add_users_in_store(dir: &Path, users: &[(String, String)]) {
    let url = format!("sqlite://{}", dir.join("data").join("sambung.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = sambung_store::Store::open(&url).await.expect("open the test database");
        for (username, password) in users {
            store
                .create_account(sambung_store::NewAccount::new(username, password, REALM))
                .await
                .unwrap_or_else(|e| panic!("create the account {username}: {e}"));
        }
        store.close().await;
    });
}
