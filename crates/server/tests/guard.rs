//! The abuse guard (`[guard]`, `[fraud]`) against real attack tools and floods, each test with a
//! server of its own configured for it, every attacker on a 127.0.0.0/8 address of its own:
//!
//! 1. svmap finds the server when scanner user agents are not judged, and with the default list
//!    a second svmap gets nothing and its address is banned;
//! 2. svwar, judged by behaviour only, finds none of the existing accounts, and its sweep of
//!    unknown users gets its address banned;
//! 3. svcrack never finds a password that is in its word list: its address is banned after at
//!    most 10 failed digest checks, it gives up by itself, and the account's own phone still
//!    registers from elsewhere;
//! 4. an INVITE flood from one address is banned within 2 s while 200 registered callers on
//!    other addresses keep at least 99.9 % of their calls;
//! 5. a TCP connection flood from one address keeps at most `max_connections_per_source` of its
//!    connections, and another address is served over TCP meanwhile;
//! 6. toll fraud: too many concurrent calls, too many calls a minute, a forward to an outside
//!    destination that is not allowed: 403 with the limit's reason phrase and a WARN line;
//! 7. an account locked by failed digest checks from several addresses answers its right
//!    password exactly like a wrong one until the lockout ends;
//! 8. `sambung ban add|list|remove`, a ban for some seconds ends by itself, and bans (made by
//!    hand or by the guard) survive a restart;
//! 9. addresses in `trusted` networks are never banned, even with a scanner's user agent.
//!
//! The sipvicious tools (PyPI `sipvicious` 0.3.8, installed by scripts/test.sh in a virtual
//! environment named by SAMBUNG_SIPVICIOUS) always send `User-Agent: friendly-scanner` (there
//! is no option to change it), so the tests that judge them by behaviour turn
//! `scanner_user_agents` off. svwar and svcrack 0.3.8 parse `-b` (the address to bind) but never
//! use it: they are run through [`BIND_SHIM`], which binds their socket to the address given.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::clients::{
    Cleanup, REALM, Sipp, SippResult, User, add_users_in_store, poll_until, server_config, server_dir_with_users,
    server_rtp_range, set_call_settings, strip_ansi, tail,
};
use common::{Server, free_port, has_call_id, options, read_message, status_of, temp_dir};

// ---------------------------------------------------------------------------------------------
// Servers, probes and the server's log
// ---------------------------------------------------------------------------------------------

/// Configuration for a test server: realm, relay ports of its own, and `tables` (`[guard]`,
/// `[fraud]`).
fn config(tables: &str) -> String {
    format!("{}{tables}", server_config(server_rtp_range()))
}

/// A server with `tables` in its configuration and `users` in its database.
fn server(tables: &str, users: &[User<'_>]) -> Server {
    let extra = config(tables);
    Server::start_owning(server_dir_with_users(&extra, users), &extra)
}

/// Runs `sambung ARGS --config <dir>/sambung.toml` (the configuration the server runs with).
fn sambung(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(args)
        .arg("--config")
        .arg(dir.join("sambung.toml"))
        .env_remove("RUST_LOG")
        .env_remove("SAMBUNG_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run sambung")
}

/// Like [`sambung`], expecting success; returns standard output.
fn sambung_ok(dir: &Path, args: &[&str]) -> String {
    let out = sambung(dir, args);
    assert!(
        out.status.success(),
        "`sambung {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends one OPTIONS over UDP from `from` (an address of 127.0.0.0/8, any port) and says whether
/// an answer came within `wait`.
fn udp_answered(server: &Server, from: &str, wait: Duration) -> bool {
    static N: AtomicU32 = AtomicU32::new(0);
    let socket = UdpSocket::bind((from, 0)).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let call_id = format!("probe-{from}-{}", N.fetch_add(1, Ordering::Relaxed));
    let request = options(server.udp_addr(), "UDP", socket.local_addr().unwrap(), &call_id);
    socket.send_to(&request, server.udp_addr()).unwrap();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 65535];
    while Instant::now() < deadline {
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && has_call_id(&buf[..n], &call_id)
        {
            return true;
        }
    }
    false
}

/// Sends OPTIONS with `User-Agent: friendly-scanner` (svmap's) over UDP from `from`; says whether
/// it was answered within a second.
fn scanner_answered(server: &Server, from: &str) -> bool {
    let socket = UdpSocket::bind((from, 0)).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let call_id = format!("scan-{from}");
    let request = String::from_utf8(options(server.udp_addr(), "UDP", socket.local_addr().unwrap(), &call_id))
        .unwrap()
        .replace("Accept: ", "User-Agent: friendly-scanner\r\nAccept: ");
    socket.send_to(request.as_bytes(), server.udp_addr()).unwrap();
    let mut buf = [0u8; 65535];
    matches!(socket.recv_from(&mut buf), Ok((n, _)) if has_call_id(&buf[..n], &call_id))
}

/// True when `line` carries the field `name=ip` (quoted or not, and not a longer address).
fn has_ip_field(line: &str, name: &str, ip: &str) -> bool {
    [format!("{name}={ip}"), format!("{name}=\"{ip}\"")].iter().any(|pattern| {
        line.match_indices(pattern.as_str()).any(|(at, _)| {
            !line[at + pattern.len()..].starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == ':')
        })
    })
}

/// The server's `source banned` line for `ip`, if it logged one.
fn ban_line(server: &Server, ip: &str) -> Option<String> {
    strip_ansi(&server.log())
        .lines()
        .find(|l| l.contains("source banned") && has_ip_field(l, "source", ip))
        .map(str::to_owned)
}

/// Waits up to `limit` for the server's `source banned` line for `ip`.
fn wait_ban_line(server: &Server, ip: &str, limit: Duration) -> Option<String> {
    let mut line = None;
    poll_until(limit, || {
        line = ban_line(server, ip);
        line.is_some()
    });
    line
}

/// Asserts the ban of `ip` is logged at WARN, and that it (still) gets no answer, while
/// 127.0.0.1 does.
fn assert_banned(server: &Server, ip: &str, what: &str) -> String {
    // A sweep is banned once its names waited out the grace for an answered challenge (4 s).
    let line = wait_ban_line(server, ip, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!("{what}: no `source banned` line for {ip}; server log:\n{}", tail(&server.log(), 12000))
    });
    assert!(line.contains(" WARN "), "{what}: the ban must be logged at WARN: {line}");
    assert!(line.contains("reason="), "{what}: the ban line must give a reason: {line}");
    assert!(!udp_answered(server, ip, Duration::from_millis(500)), "{what}: the banned {ip} still gets answers");
    assert!(udp_answered(server, "127.0.0.1", Duration::from_secs(2)), "{what}: 127.0.0.1 gets no answer");
    line
}

/// The time a log line was written: its leading RFC 3339 UTC timestamp
/// (`2026-12-07T00:15:25.518554Z`).
fn log_time(line: &str) -> SystemTime {
    let stamp = line.split_whitespace().next().unwrap_or_default();
    let parse = || -> Option<SystemTime> {
        let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
        let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.split(':');
        let (h, min) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
        let secs: f64 = t.next()?.parse().ok()?;
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let whole = days * 86_400 + h * 3600 + min * 60;
        Some(UNIX_EPOCH + Duration::from_secs(whole as u64) + Duration::from_secs_f64(secs))
    };
    parse().unwrap_or_else(|| panic!("no timestamp at the start of the log line {line:?}"))
}

// ---------------------------------------------------------------------------------------------
// sipvicious
// ---------------------------------------------------------------------------------------------

/// Runs a sipvicious tool with its socket bound to a chosen address: `python -c BIND_SHIM TOOL IP
/// ARGS...`. svwar and svcrack 0.3.8 take `-b` but never hand it to the socket (it stays bound to
/// every address, so on loopback their packets come from 127.0.0.1); binding the "any" address
/// to IP instead makes them behave as `-b IP` says. The tool itself is unchanged.
const BIND_SHIM: &str = r#"
import importlib, socket, sys
tool, ip = sys.argv[1], sys.argv[2]
_bind = socket.socket.bind
def bind(self, address):
    if address[0] in ("", "0.0.0.0"):
        address = (ip,) + tuple(address[1:])
    return _bind(self, address)
socket.socket.bind = bind
sys.argv = ["sipvicious_" + tool] + sys.argv[3:]
sys.exit(importlib.import_module("sipvicious." + tool).main())
"#;

/// The console script `sipvicious_NAME`: in $SAMBUNG_SIPVICIOUS (scripts/test.sh sets it), else
/// on PATH. Fails the test when it is missing.
fn sipvicious_script(name: &str) -> PathBuf {
    let file = format!("sipvicious_{name}");
    if let Some(dir) = std::env::var_os("SAMBUNG_SIPVICIOUS") {
        let path = Path::new(&dir).join(&file);
        assert!(
            path.is_file(),
            "{} is missing: SAMBUNG_SIPVICIOUS must name the bin directory of an environment with sipvicious 0.3.8 \
             (./scripts/test.sh makes one)",
            path.display()
        );
        return path;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(&file))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{file}` not found: install sipvicious 0.3.8 from PyPI (./scripts/test.sh does, in a virtual \
                 environment it names with SAMBUNG_SIPVICIOUS)"
            )
        })
}

/// The Python interpreter a console script runs with (its `#!` line).
fn interpreter(script: &Path) -> PathBuf {
    let text = std::fs::read_to_string(script).unwrap_or_else(|e| panic!("read {}: {e}", script.display()));
    let first = text.lines().next().unwrap_or_default();
    let interpreter = first.strip_prefix("#!").map(str::trim).unwrap_or_default();
    assert!(!interpreter.is_empty(), "{} has no #! line", script.display());
    PathBuf::from(interpreter)
}

/// What a sipvicious run printed and how it ended.
#[derive(Debug)]
struct ToolRun {
    /// Exit code; `None` when the test had to kill it.
    code: Option<i32>,
    /// Standard output and standard error, interleaved.
    output: String,
    elapsed: Duration,
}

impl ToolRun {
    fn killed(&self) -> bool {
        self.code.is_none()
    }
}

/// Runs `sipvicious_TOOL ARGS` from `source` (its socket bound there) and waits up to `limit`,
/// killing it past that.
fn sipvicious(tool: &str, source: &str, args: &[&str], limit: Duration) -> ToolRun {
    let python = interpreter(&sipvicious_script(tool));
    let dir = temp_dir(tool);
    let started = Instant::now();
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(BIND_SHIM)
        .arg(tool)
        .arg(source)
        .args(args)
        .current_dir(&dir)
        // Sessions (-s) would go to ~/.sipvicious: keep anything it writes in the test's folder.
        .env("HOME", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {} for sipvicious_{tool}: {e}", python.display()));
    let output = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
    ]
    .into_iter()
    .map(|stream| {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut output = output.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
        })
    })
    .collect();
    let mut status = None;
    poll_until(limit, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    for reader in readers {
        let _ = reader.join();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let output = output.lock().unwrap().clone();
    ToolRun { code: status.and_then(|s| s.code()), output, elapsed: started.elapsed() }
}

/// Turns the scanner user agents off: sipvicious is judged by what it does, not by its
/// `User-Agent: friendly-scanner`.
const NO_SCANNER_UA: &str = "[guard]\nscanner_user_agents = []\n";

// ---------------------------------------------------------------------------------------------
// 1. svmap
// ---------------------------------------------------------------------------------------------

#[test]
fn svmap_finds_the_server_and_with_the_default_user_agents_is_banned() {
    // Not judged by user agent: svmap is an OPTIONS like any other and finds the server.
    let open = server(NO_SCANNER_UA, &[]);
    let port = open.ports.udp.to_string();
    let local = free_port().to_string();
    let run = sipvicious(
        "svmap",
        "127.0.0.21",
        &["-b", "127.0.0.21", "-P", &local, "-p", &port, "127.0.0.1"],
        Duration::from_secs(30),
    );
    eprintln!(
        "svmap against a server without the scanner list ({:?}, exit {:?}):\n{}",
        run.elapsed, run.code, run.output
    );
    assert_eq!(run.code, Some(0), "svmap must find the server:\n{}", run.output);
    assert!(
        run.output.contains(&format!("127.0.0.1:{port}")) && run.output.contains("Sambung"),
        "svmap must list 127.0.0.1:{port} with the server's user agent:\n{}",
        run.output
    );
    assert_eq!(ban_line(&open, "127.0.0.21"), None, "nothing about svmap's OPTIONS deserves a ban");
    assert!(udp_answered(&open, "127.0.0.21", Duration::from_secs(2)), "127.0.0.21 must still be answered");

    // The default list names friendly-scanner: the request is dropped unanswered and the address
    // banned at once.
    let guarded = server("", &[]);
    let port = guarded.ports.udp.to_string();
    let local = free_port().to_string();
    let run = sipvicious(
        "svmap",
        "127.0.0.22",
        &["-b", "127.0.0.22", "-P", &local, "-p", &port, "127.0.0.1"],
        Duration::from_secs(30),
    );
    eprintln!("svmap against the default scanner list ({:?}, exit {:?}):\n{}", run.elapsed, run.code, run.output);
    assert!(
        !run.output.contains(&format!("127.0.0.1:{port}")) && run.output.contains("found nothing"),
        "svmap must find nothing (its request is dropped unanswered):\n{}",
        run.output
    );
    let line = assert_banned(&guarded, "127.0.0.22", "svmap with its friendly-scanner user agent");
    eprintln!("ban: {line}");
    assert!(udp_answered(&guarded, "127.0.0.23", Duration::from_secs(2)), "another address must still be answered");
}

// ---------------------------------------------------------------------------------------------
// 2. svwar
// ---------------------------------------------------------------------------------------------

const ACCOUNTS: [User<'static>; 5] = [
    User::new("100", "Kettle-Drum-41"),
    User::new("101", "Paper-Lantern-58"),
    User::new("1000", "Orange-Kite-77"),
    User::new("alice", "Wonder-Land-77"),
    User::new("bob", "Builder-Can-42"),
];

/// Asserts a sipvicious run reported none of `names` (its result table has a row `| NAME |`;
/// its log says `'NAME' exists`).
fn assert_found_none(run: &ToolRun, names: &[&str], what: &str) {
    for name in names {
        assert!(
            !run.output.lines().any(|l| l.starts_with(&format!("| {name} ")))
                && !run.output.contains(&format!("'{name}'")),
            "{what}: svwar found the account {name}:\n{}",
            run.output
        );
    }
    assert!(run.output.contains("found nothing"), "{what}: svwar must report that it found nothing:\n{}", run.output);
}

#[test]
fn svwar_finds_no_account_and_its_sweep_is_banned() {
    let server = server(NO_SCANNER_UA, &ACCOUNTS);
    let port = server.ports.udp.to_string();
    let names: Vec<&str> = ACCOUNTS.iter().map(|u| u.name).collect();
    // The usual guesses around the accounts, the accounts among them.
    let dir = temp_dir("svwar");
    let _cleanup = Cleanup(dir.clone());
    let mut guesses: Vec<String> = (90..=110).chain(995..=1005).map(|n| n.to_string()).collect();
    guesses.extend(["admin", "alice", "bob", "test", "operator", "sales", "support"].map(str::to_owned));
    let dictionary = dir.join("extensions.txt");
    std::fs::write(&dictionary, guesses.join("\n") + "\n").unwrap();
    let dictionary = dictionary.to_str().unwrap();
    let source = "127.0.0.24";
    let limit = Duration::from_secs(60);

    // Its default method, REGISTER: an unknown user gets the same challenge as a known one, so
    // svwar gives up at once ("authentication request for an unknown extension", --force to go
    // on) ...
    let local = free_port().to_string();
    let first =
        sipvicious("svwar", source, &["-b", source, "-P", &local, "-p", &port, "-d", dictionary, "127.0.0.1"], limit);
    eprintln!("svwar (REGISTER) ({:?}, exit {:?}):\n{}", first.elapsed, first.code, first.output);
    assert!(!first.killed(), "svwar did not end within {limit:?}:\n{}", first.output);
    assert_found_none(&first, &names, "svwar with REGISTER");
    // ... and forced, it stops at the first answer, the same as the one to its made-up user.
    let local = free_port().to_string();
    let forced = sipvicious(
        "svwar",
        source,
        &["-b", source, "-P", &local, "-p", &port, "-d", dictionary, "--force", "127.0.0.1"],
        limit,
    );
    eprintln!("svwar --force (REGISTER) ({:?}, exit {:?}):\n{}", forced.elapsed, forced.code, forced.output);
    assert!(!forced.killed(), "svwar did not end within {limit:?}:\n{}", forced.output);
    assert_found_none(&forced, &names, "svwar --force with REGISTER");

    // OPTIONS is answered alike for everyone, so svwar sweeps its whole list with it: too many
    // unknown users from one address, banned.
    let local = free_port().to_string();
    let sweep = sipvicious(
        "svwar",
        source,
        &["-b", source, "-P", &local, "-p", &port, "-d", dictionary, "--force", "-m", "OPTIONS", "127.0.0.1"],
        limit,
    );
    eprintln!("svwar --force -m OPTIONS ({:?}, exit {:?}):\n{}", sweep.elapsed, sweep.code, sweep.output);
    assert!(!sweep.killed(), "svwar did not end within {limit:?}:\n{}", sweep.output);
    assert_found_none(&sweep, &names, "svwar sweeping with OPTIONS");
    let line = assert_banned(&server, source, "svwar's sweep of unknown users");
    eprintln!("ban: {line}");
}

// ---------------------------------------------------------------------------------------------
// 3. svcrack
// ---------------------------------------------------------------------------------------------

#[test]
fn svcrack_never_finds_the_password_and_the_owner_still_registers() {
    // Default thresholds (auth_failures_per_source = 5), scanner user agents off.
    let server = server(NO_SCANNER_UA, &ACCOUNTS);
    let victim = ACCOUNTS[2];
    let dir = temp_dir("svcrack");
    let _cleanup = Cleanup(dir.clone());
    // 1,000 guesses, the password the 601st.
    let mut words: Vec<String> = (0..1000).map(|i| format!("guess-{i:04}-pw")).collect();
    words[600] = victim.password.to_owned();
    let dictionary = dir.join("passwords.txt");
    std::fs::write(&dictionary, words.join("\n") + "\n").unwrap();
    let source = "127.0.0.30";
    let (port, local) = (server.ports.udp.to_string(), free_port().to_string());
    let limit = Duration::from_secs(90);
    let run = sipvicious(
        "svcrack",
        source,
        &["-b", source, "-P", &local, "-p", &port, "-u", victim.name, "-d", dictionary.to_str().unwrap(), "127.0.0.1"],
        limit,
    );
    eprintln!("svcrack ({:?}, exit {:?}):\n{}", run.elapsed, run.code, run.output);
    assert!(
        !run.output.contains(victim.password) && run.code != Some(40),
        "svcrack found the password:\n{}",
        run.output
    );
    assert!(!run.killed(), "svcrack did not give up by itself within {limit:?}:\n{}", run.output);

    let ban = assert_banned(&server, source, "svcrack");
    let log = strip_ansi(&server.log());
    let failures = |lines: &mut dyn Iterator<Item = &str>| {
        lines.filter(|l| l.contains("authentication failed") && l.contains(&format!("remote={source}:"))).count()
    };
    let before =
        failures(&mut log.lines().take_while(|l| !(l.contains("source banned") && has_ip_field(l, "source", source))));
    let total = failures(&mut log.lines());
    eprintln!("svcrack: {before} failed digest checks logged before the ban, {total} in all; ban: {ban}");
    assert!(before >= 1, "svcrack's failed digest checks must be logged (DEBUG `authentication failed`)");
    assert!(before <= 10, "{before} failed digest checks from {source} before its ban (at most 10)");

    // The account's owner, from elsewhere, still registers.
    let phone = Sipp::new("register.xml", free_port())
        .source_ip("127.0.0.31")
        .to(&server)
        .service(victim.name)
        .auth(victim.name, victim.password)
        .run();
    phone.assert_success("the owner's phone registering after the attack", &server);
}

// ---------------------------------------------------------------------------------------------
// 4. INVITE flood under legitimate load
// ---------------------------------------------------------------------------------------------

/// The last row of a SIPp statistics file (-trace_stat -stf) as (column, value).
fn sipp_stats(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let (Some(head), Some(last)) = (lines.first(), lines.last()) else { return Vec::new() };
    head.split(';').zip(last.split(';')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn stat(stats: &[(String, String)], column: &str) -> u64 {
    stats.iter().find(|(k, _)| k == column).and_then(|(_, v)| v.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn invite_flood_is_banned_within_2_s_while_registered_callers_keep_calling() {
    const GROUPS: usize = 4;
    const PER_GROUP: usize = 50;
    const CALLS: u32 = 90; // per caller SIPp, at RATE calls a second: 15 s of calls
    const RATE: &str = "6";
    let callees: Vec<(String, String)> =
        (1..=GROUPS).map(|i| (format!("callee{i}"), format!("Callee-Pass-{i}-Zz"))).collect();
    let callers: Vec<(String, String)> =
        (1..=GROUPS * PER_GROUP).map(|i| (format!("caller{i:03}"), format!("Load-Pass-{i:03}-Zz"))).collect();
    // Default guard ([guard] rate = 200, burst = 400), a relay large enough for the calls.
    let first = common::port_block(98);
    let extra = format!(
        "realm = \"{REALM}\"\n[media]\naddress = \"127.0.0.1\"\nrtp_port_min = {first}\nrtp_port_max = {}\n",
        first + 97
    );
    let dir = server_dir_with_users(&extra, &[]);
    let mut accounts = callees.clone();
    accounts.extend(callers.iter().cloned());
    add_users_in_store(&dir, &accounts);
    let server = Server::start_owning(dir, &extra);
    let work = temp_dir("flood");
    let _cleanup = Cleanup(work.clone());

    // The callees: a SIPp each on 127.0.0.54.., registered there, answering every call.
    let mut answering = Vec::new();
    for (i, (name, password)) in callees.iter().enumerate() {
        let ip = format!("127.0.0.{}", 54 + i);
        let port = free_port();
        Sipp::new("register.xml", port)
            .source_ip(&ip)
            .to(&server)
            .service(name)
            .auth(name, password)
            .run()
            .assert_success(&format!("REGISTER {name} from {ip}"), &server);
        answering.push(
            Sipp::new("uas_load.xml", port)
                .source_ip(&ip)
                .calls(100_000)
                .timeout(Duration::from_secs(120))
                .args(&["-default_behaviors", "all,-bye"])
                .spawn(),
        );
    }
    // The callers: 4 groups of 50 users, each group a SIPp on 127.0.0.50.. that registers its
    // users, then calls its callee as each of them in turn.
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let csv = work.join(format!("callers{g}.csv"));
        let mut text = "SEQUENTIAL\n".to_owned();
        for (name, password) in &callers[g * PER_GROUP..(g + 1) * PER_GROUP] {
            text.push_str(&format!("{name};[authentication username={name} password={password}]\n"));
        }
        std::fs::write(&csv, text).unwrap();
        groups.push((format!("127.0.0.{}", 50 + g), free_port(), csv));
    }
    let registering: Vec<_> = groups
        .iter()
        .map(|(ip, port, csv)| {
            Sipp::new("register_csv.xml", *port)
                .source_ip(ip)
                .to(&server)
                .calls(PER_GROUP as u32)
                .args(&["-inf", csv.to_str().unwrap(), "-r", "20"])
                .spawn()
        })
        .collect();
    for (run, (ip, _, _)) in registering.into_iter().zip(&groups) {
        run.wait().assert_success(&format!("registering 50 callers from {ip}"), &server);
    }

    let stats: Vec<PathBuf> = (0..GROUPS).map(|g| work.join(format!("calls{g}.csv"))).collect();
    let calling: Vec<_> = groups
        .iter()
        .zip(&stats)
        .enumerate()
        .map(|(g, ((ip, port, csv), stats))| {
            Sipp::new("uac_csv_call.xml", *port)
                .source_ip(ip)
                .to(&server)
                .service(&callees[g].0)
                .calls(CALLS)
                .timeout(Duration::from_secs(90))
                .args(&["-inf", csv.to_str().unwrap(), "-r", RATE, "-d", "200", "-l", "50"])
                .args(&["-trace_stat", "-stf", stats.to_str().unwrap(), "-fd", "1"])
                .spawn()
        })
        .collect();

    // A few seconds of calls, then the flood from 127.0.0.40: INVITEs without credentials at
    // 2,000 a second, 6,000 of them.
    std::thread::sleep(Duration::from_secs(4));
    let flooder = "127.0.0.40";
    let flood_stats = work.join("flood.csv");
    let flood_start = SystemTime::now();
    let flood = Sipp::new("flood_invite.xml", free_port())
        .source_ip(flooder)
        .to(&server)
        .service(&callees[0].0)
        .calls(6000)
        .timeout(Duration::from_secs(30))
        .args(&["-r", "2000", "-l", "100000"])
        .args(&["-trace_stat", "-stf", flood_stats.to_str().unwrap(), "-fd", "1"])
        .spawn();
    let ban = wait_ban_line(&server, flooder, Duration::from_secs(15));
    let flood = flood.wait();
    let results: Vec<SippResult> = calling.into_iter().map(|c| c.wait()).collect();
    drop(answering);

    // SIPp's own start (its first INVITE goes out at once): the StartTime column of its
    // statistics ends with the Unix time.
    let first_packet = sipp_stats(&flood_stats)
        .iter()
        .find(|(k, _)| k == "StartTime")
        .and_then(|(_, v)| v.rsplit('\t').next()?.trim().parse::<f64>().ok())
        .map(|t| UNIX_EPOCH + Duration::from_secs_f64(t));
    let banned_at = ban.as_deref().map(log_time);
    let since_start = banned_at.and_then(|t| t.duration_since(flood_start).ok());
    let since_first = banned_at.zip(first_packet).and_then(|(b, f)| b.duration_since(f).ok());
    let (mut ok, mut failed) = (0, 0);
    for (g, path) in stats.iter().enumerate() {
        let row = sipp_stats(path);
        let (s, f) = (stat(&row, "SuccessfulCall(C)"), stat(&row, "FailedCall(C)"));
        eprintln!("callers from {}: {s} calls succeeded, {f} failed (of {CALLS})", groups[g].0);
        ok += s;
        failed += f;
    }
    let expected = u64::from(CALLS) * GROUPS as u64;
    let seconds = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()));
    eprintln!(
        "INVITE flood: banned {} after the flood started ({} after SIPp started sending); legitimate \
         calls: {ok} of {expected} succeeded ({:.2} %), {failed} failed\nban: {}",
        seconds(since_start),
        seconds(since_first),
        ok as f64 * 100.0 / expected as f64,
        ban.as_deref().unwrap_or("none")
    );
    let Some(since_start) = since_start else {
        panic!(
            "the INVITE flood from {flooder} was not banned; flood: {}\nserver log:\n{}",
            tail(&flood.output, 2000),
            tail(&server.log(), 12000)
        )
    };
    assert!(
        since_start <= Duration::from_secs(2),
        "the flood was banned {since_start:?} after it started (at most 2 s)"
    );
    for caller in &groups {
        assert_eq!(ban_line(&server, &caller.0), None, "the legitimate callers on {} were banned", caller.0);
    }
    assert!(
        ok * 1000 >= expected * 999,
        "only {ok} of {expected} legitimate calls succeeded (at least 99.9 %); first failing run:\n{}",
        results.iter().find(|r| r.code != Some(0)).map_or(String::new(), |r| tail(&r.describe(), 6000).to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// 5. TCP connection flood
// ---------------------------------------------------------------------------------------------

/// A TCP connection from `from` to the server's TCP port.
fn tcp_from(server: &Server, from: &str) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::new(from.parse().unwrap(), 0).into()).ok()?;
    socket.connect_timeout(&server.tcp_addr().into(), Duration::from_secs(2)).ok()?;
    Some(socket.into())
}

/// A REGISTER without credentials for `user`, over TCP.
fn register_request(server: &Server, local: SocketAddr, user: &str, call_id: &str) -> Vec<u8> {
    let target = server.tcp_addr();
    format!(
        "REGISTER sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@{target}>\r\n\
         From: <sip:{user}@{target}>;tag=t-{call_id}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@{local};transport=tcp>\r\n\
         Expires: 300\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn tcp_connection_flood_keeps_at_most_the_per_source_limit() {
    // The message rate is set high so that only the connection limit acts here.
    let server = server("[guard]\nmax_connections_per_source = 32\nrate = 5000\nburst = 10000\n", &ACCOUNTS);
    let flooder = "127.0.0.45";
    let mut connections: Vec<TcpStream> = (0..300).filter_map(|_| tcp_from(&server, flooder)).collect();
    let opened = connections.len();

    // Every connection asks OPTIONS; the ones the server kept answer it, the others were closed.
    for (i, stream) in connections.iter_mut().enumerate() {
        let local = stream.local_addr().unwrap();
        let _ = stream.write_all(&options(server.tcp_addr(), "TCP", local, &format!("flood-{i}")));
        stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    }
    // Meanwhile another address is served over TCP: OPTIONS, and REGISTER (challenged).
    let mut client = tcp_from(&server, "127.0.0.46").expect("127.0.0.46 connects during the flood");
    client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = client.local_addr().unwrap();
    let mut buf = Vec::new();
    client.write_all(&options(server.tcp_addr(), "TCP", local, "other-options")).unwrap();
    let answer = read_message(&mut client, &mut buf, Duration::from_secs(5));
    assert_eq!(answer.as_deref().map(status_of), Some(200), "OPTIONS from 127.0.0.46 during the flood");
    client.write_all(&register_request(&server, local, "alice", "other-register")).unwrap();
    let answer = read_message(&mut client, &mut buf, Duration::from_secs(5));
    assert_eq!(answer.as_deref().map(status_of), Some(401), "REGISTER from 127.0.0.46 during the flood");

    let (mut answered, mut closed) = (0, 0);
    let mut buffers = vec![Vec::new(); connections.len()];
    let mut done = vec![false; connections.len()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && done.iter().any(|d| !d) {
        for (i, stream) in connections.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => {
                    closed += 1;
                    done[i] = true;
                }
                Ok(n) => {
                    buffers[i].extend_from_slice(&chunk[..n]);
                    if let Ok(Some(_)) = sambung_sip::frame_stream(&buffers[i], sambung_sip::MAX_MESSAGE_SIZE) {
                        answered += 1;
                        done[i] = true;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => {
                    closed += 1;
                    done[i] = true;
                }
            }
        }
    }
    eprintln!(
        "TCP flood from {flooder}: {opened} connections opened, {answered} kept and answered, {closed} closed by the server, {} \
         neither within 5 s",
        done.iter().filter(|d| !**d).count()
    );
    assert!(answered >= 1, "none of the flood's connections was served (the limit is 32, not 0)");
    assert!(
        answered <= 32,
        "{answered} connections from {flooder} were served (at most max_connections_per_source = 32)"
    );
    assert!(closed >= opened - 32, "only {closed} of the {opened} connections beyond the limit were closed");
    // The kept ones stay usable; the other address is still served after the flood.
    drop(connections);
    let mut again = tcp_from(&server, "127.0.0.46").expect("127.0.0.46 connects after the flood");
    again.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = again.local_addr().unwrap();
    again.write_all(&options(server.tcp_addr(), "TCP", local, "other-after")).unwrap();
    let answer = read_message(&mut again, &mut Vec::new(), Duration::from_secs(5));
    assert_eq!(answer.as_deref().map(status_of), Some(200), "OPTIONS from 127.0.0.46 after the flood");
}

// ---------------------------------------------------------------------------------------------
// 6. Toll fraud
// ---------------------------------------------------------------------------------------------

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User { name: "bob", password: "Builder-Can-42", extension: Some("1002") };
const CAROL: User<'static> = User { name: "carol", password: "Singing-Xmas-Songs-3", extension: Some("1003") };

/// A server with alice, bob and carol (voicemail off: every outcome is a device's or a limit's).
fn fraud_server(tables: &str) -> Server {
    let extra = config(tables);
    let dir = server_dir_with_users(&extra, &[ALICE, BOB, CAROL]);
    for user in [ALICE, BOB, CAROL] {
        set_call_settings(&dir, user.name, |s| s.voicemail = false);
    }
    Server::start_owning(dir, &extra)
}

fn register(server: &Server, user: &User<'_>, port: u16) {
    Sipp::new("register.xml", port)
        .to(server)
        .service(user.name)
        .auth(user.name, user.password)
        .run()
        .assert_success(&format!("REGISTER as {}", user.name), server);
}

/// alice calls `callee` with `scenario`.
fn alice_calls(server: &Server, scenario: &str, callee: &str) -> Sipp {
    Sipp::new(scenario, free_port())
        .to(server)
        .service(callee)
        .var("caller", ALICE.name)
        .auth(ALICE.name, ALICE.password)
}

/// Asserts alice's call ended with `403 reason` and the server logged the limit at WARN.
fn assert_refused(server: &Server, run: &SippResult, reason: &str) {
    run.assert_success(&format!("alice's call refused with 403 {reason}"), server);
    let last = run.final_response("INVITE").unwrap_or_else(|| panic!("no final response\n{}", run.describe()));
    assert_eq!(last.start_line(), format!("SIP/2.0 403 {reason}"), "{}", run.describe());
    let log = strip_ansi(&server.log());
    assert!(
        log.lines().any(|l| l.contains(" WARN ") && l.contains("toll-fraud limit")),
        "the refusal must be logged at WARN with `toll-fraud limit`; server log:\n{}",
        tail(&log, 8000)
    );
}

#[test]
fn a_third_concurrent_call_is_refused() {
    let server = fraud_server("[fraud]\nmax_concurrent_calls = 2\n");
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let bob = Sipp::new("uas_load.xml", bob_port).calls(2).timeout(Duration::from_secs(40)).spawn();
    // Two calls that stay up for 8 s.
    let mut held: Vec<_> =
        (0..2).map(|_| alice_calls(&server, "uac_held.xml", BOB.name).args(&["-d", "8000"]).spawn()).collect();
    let up = poll_until(Duration::from_secs(15), || held.iter().all(|c| c.logs().contains("call up")));
    assert!(up, "alice's two calls to bob were not both answered; server log:\n{}", tail(&server.log(), 8000));
    let third = alice_calls(&server, "uac_rejected.xml", BOB.name).run();
    assert_refused(&server, &third, "Too Many Calls");
    for call in held.drain(..) {
        call.wait().assert_success("alice's held call, untouched by the refused third", &server);
    }
    bob.wait().assert_success("bob answering the two calls", &server);
}

#[test]
fn a_fourth_call_within_a_minute_is_refused() {
    let server = fraud_server("[fraud]\nmax_calls_per_minute = 3\n");
    let bob_port = free_port();
    register(&server, &BOB, bob_port);
    let bob = Sipp::new("uas_load.xml", bob_port).calls(3).timeout(Duration::from_secs(40)).spawn();
    for n in 1..=3 {
        alice_calls(&server, "uac_held.xml", BOB.name)
            .args(&["-d", "100"])
            .run()
            .assert_success(&format!("alice's call {n} of 3 within the minute"), &server);
    }
    let fourth = alice_calls(&server, "uac_rejected.xml", BOB.name).run();
    assert_refused(&server, &fourth, "Call Rate Exceeded");
    bob.wait().assert_success("bob answering the three calls", &server);
}

#[test]
fn forwarding_reaches_only_allowed_outside_destinations() {
    let server = fraud_server("[fraud]\noutside_destinations = [\"127.0.0.77\"]\n");
    let dir = server.dir.clone();

    // carol forwards everything to a SIP phone at 127.0.0.99: not allowed.
    let refused_port = free_port();
    sambung_ok(&dir, &["settings", "set", CAROL.name, "--forward-always", &format!("sip:x@127.0.0.99:{refused_port}")]);
    let outside =
        Sipp::new("uas_busy.xml", refused_port).source_ip("127.0.0.99").timeout(Duration::from_secs(6)).spawn();
    // The running server takes the setting within about a second.
    let mut run = None;
    poll_until(Duration::from_secs(5), || {
        let call = alice_calls(&server, "uac_rejected.xml", CAROL.name).run();
        let done = call.final_response("INVITE").and_then(|m| m.status()) == Some(403);
        run = Some(call);
        done
    });
    let run = run.unwrap();
    assert_refused(&server, &run, "Destination Not Allowed");
    let outside = outside.wait();
    assert!(outside.received().is_empty(), "the phone at 127.0.0.99 must get nothing:\n{}", outside.describe());

    // To 127.0.0.77, allowed: the outside phone rings (and answers busy).
    let allowed_port = free_port();
    sambung_ok(&dir, &["settings", "set", CAROL.name, "--forward-always", &format!("sip:x@127.0.0.77:{allowed_port}")]);
    let outside =
        Sipp::new("uas_busy.xml", allowed_port).source_ip("127.0.0.77").timeout(Duration::from_secs(20)).spawn();
    let mut run = None;
    poll_until(Duration::from_secs(5), || {
        let call = alice_calls(&server, "uac_rejected.xml", CAROL.name).run();
        let done = call.final_response("INVITE").and_then(|m| m.status()) != Some(403);
        run = Some(call);
        done
    });
    let run = run.unwrap();
    run.assert_success("alice calling carol, forwarded to 127.0.0.77", &server);
    assert_eq!(run.final_response("INVITE").and_then(|m| m.status()), Some(486), "{}", run.describe());
    let outside = outside.wait();
    outside.assert_success("the phone at 127.0.0.77 ringing (busy)", &server);
    let invite = outside.received().into_iter().find(|m| m.method() == "INVITE").expect("an INVITE at 127.0.0.77");
    assert!(invite.start_line().starts_with(&format!("INVITE sip:x@127.0.0.77:{allowed_port}")), "{}", invite.text);
}

// ---------------------------------------------------------------------------------------------
// 7. Account lockout
// ---------------------------------------------------------------------------------------------

/// The header names of a message, lower-cased and sorted.
fn header_names(text: &str) -> Vec<String> {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut names: Vec<String> =
        head.lines().skip(1).filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_ascii_lowercase())).collect();
    names.sort();
    names
}

#[test]
fn a_locked_account_answers_the_right_password_like_a_wrong_one() {
    let server = server(
        "[guard]\nauth_failures_per_account = 3\nauth_failures_per_source = 100\nlockout_seconds = 3\n",
        &[ALICE],
    );
    let attempt = |scenario: &str, ip: &str, password: &str| {
        Sipp::new(scenario, free_port()).source_ip(ip).to(&server).service(ALICE.name).auth(ALICE.name, password).run()
    };
    // Three wrong passwords from three addresses.
    let mut wrong = Vec::new();
    for ip in ["127.0.0.31", "127.0.0.32", "127.0.0.33"] {
        let run = attempt("register_wrong_password.xml", ip, "Not-The-Password-1");
        run.assert_success(&format!("a wrong password from {ip}"), &server);
        wrong.push(run);
    }
    let locked = poll_until(Duration::from_secs(2), || {
        strip_ansi(&server.log())
            .lines()
            .any(|l| l.contains("account locked") && (l.contains("username=alice") || l.contains("username=\"alice\"")))
    });
    assert!(
        locked,
        "three failures must lock alice (`account locked` username=alice); log:\n{}",
        tail(&server.log(), 8000)
    );
    let line = strip_ansi(&server.log()).lines().find(|l| l.contains("account locked")).unwrap().to_owned();
    assert!(line.contains(" WARN "), "the lockout must be logged at WARN: {line}");

    // The right password, from a fourth address, gets what a wrong one gets: a fresh challenge.
    let right = attempt("register_wrong_password.xml", "127.0.0.34", ALICE.password);
    right.assert_success("the right password while alice is locked (answered 401, as a wrong one)", &server);
    let last_right = right.final_response("REGISTER").unwrap();
    let last_wrong = wrong[2].final_response("REGISTER").unwrap();
    assert_eq!(last_right.start_line(), last_wrong.start_line(), "{}\n{}", last_right.text, last_wrong.text);
    assert_eq!(
        header_names(&last_right.text),
        header_names(&last_wrong.text),
        "{}\n{}",
        last_right.text,
        last_wrong.text
    );
    let challenge = |m: &common::clients::Traced| m.header("WWW-Authenticate").unwrap_or_default().to_owned();
    let (c_right, c_wrong) = (challenge(&last_right), challenge(&last_wrong));
    let nonce = |c: &str| c.split("nonce=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_owned();
    assert!(c_right.starts_with("Digest ") && !nonce(&c_right).is_empty(), "{}", last_right.text);
    assert_ne!(nonce(&c_right), nonce(&c_wrong), "each challenge has a fresh nonce");
    assert_eq!(
        c_right.replace(&nonce(&c_right), ""),
        c_wrong.replace(&nonce(&c_wrong), ""),
        "the same challenge otherwise"
    );

    // Once lockout_seconds have passed since the last attempt, the right password registers.
    std::thread::sleep(Duration::from_millis(3500));
    let mut registered = None;
    for _ in 0..3 {
        let run = attempt("register.xml", "127.0.0.34", ALICE.password);
        if run.code == Some(0) {
            registered = Some(run);
            break;
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(registered.is_some(), "alice could not register after the lockout; log:\n{}", tail(&server.log(), 8000));
}

/// Forged datagrams in the name of an address whose phone authenticated (a scanner's
/// User-Agent, wrong passwords for its user) neither ban it nor lock its user out there; the
/// rest of the world still gets the locked answer.
#[test]
fn an_address_that_authenticated_is_neither_banned_nor_locked_out_by_forgeries() {
    let server = server(
        "[guard]\nauth_failures_per_account = 3\nauth_failures_per_source = 100\nlockout_seconds = 60\n",
        &[ALICE],
    );
    let attempt = |scenario: &str, ip: &str, password: &str| {
        Sipp::new(scenario, free_port()).source_ip(ip).to(&server).service(ALICE.name).auth(ALICE.name, password).run()
    };
    let office = "127.0.0.35";
    attempt("register.xml", office, ALICE.password).assert_success("alice's phone registering", &server);
    // A scanner's request "from" the office is dropped, the office is not banned.
    assert!(!scanner_answered(&server, office), "a scanner's request is never answered");
    assert!(udp_answered(&server, office, Duration::from_secs(2)), "the office must not be banned");
    assert!(ban_line(&server, office).is_none());
    // Wrong passwords for alice from three other addresses lock her...
    for ip in ["127.0.0.36", "127.0.0.37", "127.0.0.38"] {
        attempt("register_wrong_password.xml", ip, "Not-The-Password-1").assert_success("a wrong password", &server);
    }
    assert!(poll_until(Duration::from_secs(2), || strip_ansi(&server.log()).contains("account locked")));
    // ...for everyone but the office, whose phone authenticated as her before.
    let elsewhere = attempt("register_wrong_password.xml", "127.0.0.39", ALICE.password);
    elsewhere.assert_success("the right password from elsewhere while alice is locked (401)", &server);
    let again = attempt("register.xml", office, ALICE.password);
    again.assert_success("alice's phone registering again while she is locked elsewhere", &server);
}

// ---------------------------------------------------------------------------------------------
// 8. Bans from the command line, kept across a restart
// ---------------------------------------------------------------------------------------------

/// True when `ip` gets no answer now and for three probes in a row.
fn silent(server: &Server, ip: &str) -> bool {
    (0..3).all(|_| !udp_answered(server, ip, Duration::from_millis(300)))
}

#[test]
fn bans_from_the_command_line_survive_a_restart() {
    let dir = temp_dir("server");
    let _cleanup = Cleanup(dir.clone());
    let extra = config("");
    let mut server = Server::start_in(dir.clone(), &extra);
    let ip = "127.0.0.60";
    assert!(udp_answered(&server, ip, Duration::from_secs(2)), "{ip} is answered before its ban");

    sambung_ok(&dir, &["ban", "add", ip, "--reason", "guard test"]);
    assert!(
        poll_until(Duration::from_secs(3), || !udp_answered(&server, ip, Duration::from_millis(300)))
            && silent(&server, ip),
        "{ip} is still answered after `sambung ban add {ip}`; log:\n{}",
        tail(&server.log(), 6000)
    );
    assert!(udp_answered(&server, "127.0.0.61", Duration::from_secs(2)), "another address is still answered");
    let list = sambung_ok(&dir, &["ban", "list"]);
    assert!(
        list.contains(ip) && list.contains("guard test"),
        "`sambung ban list` must show {ip} and the reason:\n{list}"
    );

    // A ban the guard made itself (a scanner's User-Agent) is kept the same way.
    let scanner = "127.0.0.62";
    assert!(!scanner_answered(&server, scanner), "a scanner's OPTIONS must be dropped unanswered");
    assert_banned(&server, scanner, "an OPTIONS with User-Agent: friendly-scanner");
    assert!(sambung_ok(&dir, &["ban", "list"]).contains(scanner), "the guard's own ban of {scanner} is listed");

    // A ban for a few seconds ends by itself.
    let brief = "127.0.0.63";
    sambung_ok(&dir, &["ban", "add", brief, "--seconds", "2"]);
    assert!(
        poll_until(Duration::from_secs(3), || !udp_answered(&server, brief, Duration::from_millis(300))),
        "{brief} is still answered after `sambung ban add {brief} --seconds 2`"
    );
    assert!(
        poll_until(Duration::from_secs(6), || udp_answered(&server, brief, Duration::from_millis(300))),
        "{brief} is still not answered 6 s after its 2 s ban began"
    );

    assert_eq!(server.terminate(Duration::from_secs(10)).and_then(|s| s.code()), Some(0), "{}", server.log());
    let server = Server::start_in(dir.clone(), &extra);
    for banned in [ip, scanner] {
        assert!(
            silent(&server, banned),
            "{banned} is answered again after a restart; log:\n{}",
            tail(&server.log(), 6000)
        );
    }
    let list = sambung_ok(&dir, &["ban", "list"]);
    assert!(list.contains(ip) && list.contains(scanner), "the bans are still listed after the restart:\n{list}");
    assert!(
        udp_answered(&server, "127.0.0.61", Duration::from_secs(2)),
        "another address is answered after the restart"
    );

    sambung_ok(&dir, &["ban", "remove", ip]);
    assert!(
        poll_until(Duration::from_secs(3), || udp_answered(&server, ip, Duration::from_millis(300))),
        "{ip} is not answered after `sambung ban remove {ip}`; log:\n{}",
        tail(&server.log(), 6000)
    );
    assert!(!sambung_ok(&dir, &["ban", "list"]).contains(ip), "the removed ban is still listed");
}

// ---------------------------------------------------------------------------------------------
// 9. Trusted networks
// ---------------------------------------------------------------------------------------------

#[test]
fn trusted_networks_are_never_banned() {
    let server = server("[guard]\ntrusted = [\"127.0.0.70/31\"]\n", &[]);
    // In the trusted network, even a scanner's user agent is answered, and nothing is banned ...
    for ip in ["127.0.0.70", "127.0.0.71"] {
        assert!(scanner_answered(&server, ip), "the trusted {ip} must be answered, scanner user agent or not");
        assert_eq!(ban_line(&server, ip), None, "the trusted {ip} was banned");
        assert!(udp_answered(&server, ip, Duration::from_secs(2)), "the trusted {ip} must still be answered");
    }
    // ... next to it, it is dropped and banned.
    assert!(!scanner_answered(&server, "127.0.0.72"), "the untrusted 127.0.0.72 must not be answered");
    assert_banned(&server, "127.0.0.72", "a scanner's OPTIONS from outside the trusted network");
}
