//! Carriers, phone numbers, DNS and outgoing connections with real peers: SIPp plays the
//! carriers (on 127.0.0.21-23, each its own source address), a DNS server of the tests
//! (`tests/tools/dns-server`) answers for their zones on loopback, baresip is the phone a
//! number rings, and a second Sambung is another SIP domain reached over TLS.
//!
//! - registration with a carrier found through DNS (SRV), with digest, and its refresh;
//! - a call to a number in national form leaves on the first trunk in its format, which
//!   answers 503, and fails over to the second trunk in E.164 with the caller's number;
//! - a carrier's call to one of our numbers rings the assigned account's baresip;
//! - a call to `sip:carol@peer.test`: NAPTR and SRV name a TLS server, the certificate is
//!   checked against `peer.test`, carol's phone there answers;
//! - an emergency number goes out, with the caller's location, for an account at its limits.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::clients::*;
use common::{Server, free_port, temp_dir};

const CARRIER_A_IP: &str = "127.0.0.21";
const CARRIER_B_IP: &str = "127.0.0.22";
const CARRIER_E_IP: &str = "127.0.0.23";
const PEER_IP: &str = "127.0.0.31";
const ALICE_NUMBER: &str = "+442071234567";
const BOB_NUMBER: &str = "+442075550001";

/// The tests' DNS server, answering `zone` (JSON, see the tool's help); stopped on drop.
struct Dns {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Dns {
    fn start(dir: &Path, zone: &serde_json::Value) -> Dns {
        let zone_file = dir.join("zone.json");
        std::fs::write(&zone_file, zone.to_string()).unwrap();
        let log = dir.join("dns-queries.log");
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/dns-server");
        let mut child = Command::new(tool)
            .args(["--listen", "127.0.0.1:0", "--zone"])
            .arg(&zone_file)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/tools/dns-server (python3)");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let addr = line.trim().strip_prefix("listening ").and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            panic!("the DNS server said {line:?}");
        });
        Dns { child, addr, log }
    }

    /// The queries it got, as `name TYPE` lines.
    fn queries(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sambung ARGS --config CONFIG` and returns its standard output.
fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run sambung");
    assert!(out.status.success(), "sambung {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn numbers_leave_through_carriers_and_come_in_to_our_numbers() {
    let dir = temp_dir("trunks");
    let a_port = free_port();
    let b_port = free_port();
    // carrier-a.test has no NAPTR: the SRV of _sip._udp names its registrar and proxy.
    let dns = Dns::start(
        &dir,
        &serde_json::json!({
            "_sip._udp.carrier-a.test": [{"type": "SRV", "priority": 10, "weight": 10, "port": a_port, "target": "sip.carrier-a.test", "ttl": 60}],
            "sip.carrier-a.test": [{"type": "A", "address": CARRIER_A_IP, "ttl": 60}],
        }),
    );
    let alice = User::new("alice", "correct-horse-1");
    let bob = User::new("bob", "battery-staple-2");
    let extra = format!(
        "{}\n\
         [[trunks]]\nname = \"carrier-a\"\nproxy = \"sip:carrier-a.test\"\nregister = true\n\
         username = \"acct-a\"\npassword = \"pw-a-secret\"\nregister_expires = 600\npriority = 10\n\
         number_format = \"national\"\n\
         [[trunks]]\nname = \"carrier-b\"\nproxy = \"sip:{CARRIER_B_IP}:{b_port}\"\npriority = 20\n\
         inbound = [\"{CARRIER_B_IP}\"]\n\
         [dns]\nservers = [\"{}\"]\n\
         [dialplan]\ncountry_code = \"44\"\n\
         [fraud]\noutside_destinations = [\"+44\"]\n",
        server_config(server_rtp_range()),
        dns.addr
    );
    let server_dir = server_dir_with_users(&extra, &[alice, bob]);
    let config = server_dir.join("sambung.toml");
    // The service's numbers, given before the server starts (and one while it runs, below).
    assert!(
        cli(&config, &["number", "add", "020 7123 4567", "alice"]).contains(&format!("{ALICE_NUMBER} rings alice"))
    );

    // Carrier A: registers us (challenge, short lifetime so that we refresh), refuses calls.
    let carrier_a = Sipp::new("carrier_registrar.xml", a_port)
        .source_ip(CARRIER_A_IP)
        .var("grant", 6)
        .calls(100)
        // Each refresh keeps the registration's Call-ID (RFC 3261 §10.2.4): SIPp must not
        // take it for a stray of the finished one.
        .args(&["-deadcall_wait", "100"])
        .timeout(Duration::from_secs(60))
        .spawn();
    let mut server = Server::start_owning(server_dir, &extra);
    let registered = poll_until(Duration::from_secs(15), || server.log().contains("registered with the carrier"));
    assert!(
        registered,
        "no registration with carrier A; SIPp:\n{:?}\nlog:\n{}",
        carrier_a.received_so_far(),
        server.log()
    );
    let refreshed = poll_until(Duration::from_secs(15), || server.log().contains("registration refreshed"));
    assert!(refreshed, "no refresh; log:\n{}", server.log());
    let registers: Vec<_> = carrier_a.received_so_far().into_iter().filter(|m| m.method() == "REGISTER").collect();
    assert!(registers.len() >= 4, "two registrations, each challenged: {registers:?}");
    assert!(registers.iter().any(|m| m.header("Authorization").is_some_and(|a| a.contains("username=\"acct-a\""))));
    let listed = cli(&config, &["trunk", "list"]);
    assert!(listed.lines().any(|l| l.starts_with("carrier-a") && l.contains("registered")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("carrier-b") && l.contains("not asked")), "{listed}");
    assert!(dns.queries().contains("_sip._udp.carrier-a.test SRV"), "{}", dns.queries());

    // alice dials a national number: carrier A gets it as dialled nationally and answers 503;
    // carrier B gets it in E.164, with alice's number as the caller, and answers.
    let carrier_b_media = RtpPeer::bind();
    let carrier_b = Sipp::new("carrier_answer.xml", b_port)
        .source_ip(CARRIER_B_IP)
        .var("rtp_port", carrier_b_media.port)
        .timeout(Duration::from_secs(30))
        .spawn();
    let call = Sipp::new("uac_dial.xml", free_port())
        .to(&server)
        .var("caller", "alice")
        .var("target", format!("sip:02079460000@127.0.0.1:{}", server.ports.udp))
        .auth(alice.name, alice.password)
        .timeout(Duration::from_secs(30))
        .run();
    call.assert_success("alice's call to 020 7946 0000", &server);
    let at_b = carrier_b.wait();
    at_b.assert_success("carrier B answering", &server);
    let to_a =
        carrier_a.received_so_far().into_iter().find(|m| m.method() == "INVITE").expect("carrier A got the call");
    assert!(to_a.start_line().starts_with("INVITE sip:02079460000@carrier-a.test;user=phone "), "{}", to_a.text);
    assert!(to_a.header("From").is_some_and(|f| f.contains("sip:02071234567@carrier-a.test")), "{}", to_a.text);
    let to_b = at_b.received().into_iter().find(|m| m.method() == "INVITE").expect("carrier B got the call");
    assert!(
        to_b.start_line().starts_with(&format!("INVITE sip:+442079460000@{CARRIER_B_IP}:{b_port};user=phone ")),
        "{}",
        to_b.text
    );
    assert!(to_b.header("From").is_some_and(|f| f.contains(&format!("sip:{ALICE_NUMBER}@"))), "{}", to_b.text);
    assert!(to_b.header("P-Asserted-Identity").is_some_and(|f| f.contains(ALICE_NUMBER)), "{}", to_b.text);

    // A number added while the server runs, then called from carrier B (known by its address,
    // no credentials): bob's baresip rings and answers.
    assert!(cli(&server.dir.join("sambung.toml"), &["number", "add", BOB_NUMBER, "bob"]).contains("rings bob"));
    let audio = silence_wav(&dir, 8.0);
    let mut phone = Baresip::start(&dir.join("bob"), BaresipConfig::new(bob.name, bob.password, &server, &audio));
    assert!(phone.wait_registered(Duration::from_secs(10)), "bob's baresip did not register:\n{}", phone.log());
    std::thread::sleep(Duration::from_millis(1500)); // the number reaches call control within a second
    let incoming = Sipp::new("carrier_call_in.xml", free_port())
        .to(&server)
        .source_ip(CARRIER_B_IP)
        .service(BOB_NUMBER)
        .timeout(Duration::from_secs(20))
        .run();
    incoming.assert_success("carrier B's call to bob's number", &server);
    let invite_to_bob = phone.trace().into_iter().find(|m| m.received && m.method() == "INVITE");
    let invite_to_bob = invite_to_bob.unwrap_or_else(|| panic!("bob's baresip got no INVITE:\n{}", phone.log()));
    assert!(invite_to_bob.header("From").is_some_and(|f| f.contains("+14155550100")), "{}", invite_to_bob.text);
    // A number that is not ours is refused, and nothing else from that address gets in
    // without credentials.
    let unknown = Sipp::new("carrier_call_in.xml", free_port())
        .to(&server)
        .source_ip(CARRIER_B_IP)
        .service("+442079999999")
        .timeout(Duration::from_secs(10))
        .run();
    assert!(unknown.statuses().contains(&404), "{}", unknown.describe());
    server.terminate(Duration::from_secs(10));
    drop(carrier_a);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A test CA and a certificate for `name` signed by it, made with the openssl command.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    require_tool("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Sambung test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", &format!("/CN={name}")]].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (dir.join("ca.pem"), dir.join("leaf.pem"), dir.join("leaf.key"))
}

#[test]
fn a_call_to_another_domain_goes_over_tls_to_the_server_srv_names() {
    let dir = temp_dir("peer");
    let (ca, cert, key) = certificate(&dir, "peer.test");
    // The other domain: its own Sambung on 127.0.0.31 with a certificate for peer.test, where
    // carol's phone is registered; it takes calls from our server's address by name.
    let carol = User::new("carol", "purple-monkey-3");
    let peer_extra = format!(
        "domains = [\"peer.test\"]\n{}\n[tls]\ncertificate = {:?}\nprivate_key = {:?}\n\
         [[trunks]]\nname = \"sambung-one\"\nproxy = \"sip:127.0.0.1\"\ninbound = [\"127.0.0.1\"]\n",
        server_config(server_rtp_range()).replace("127.0.0.1", PEER_IP),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let peer_dir = server_dir_with_users(&peer_extra, &[carol]);
    let peer = Server::start_on(PEER_IP.parse::<IpAddr>().unwrap(), peer_dir, &peer_extra);
    let dead_port = free_port();
    let dns = Dns::start(
        &dir,
        &serde_json::json!({
            "peer.test": [{"type": "NAPTR", "order": 10, "pref": 10, "flags": "s", "service": "SIPS+D2T", "regexp": "", "replacement": "_sips._tcp.peer.test", "ttl": 60}],
            // The first server by priority is down (nothing listens there): the call moves on
            // to the second as soon as the connection is refused.
            "_sips._tcp.peer.test": [
                {"type": "SRV", "priority": 10, "weight": 10, "port": dead_port, "target": "sip0.peer.test", "ttl": 60},
                {"type": "SRV", "priority": 20, "weight": 10, "port": peer.ports.tls, "target": "sip1.peer.test", "ttl": 60}
            ],
            "sip0.peer.test": [{"type": "A", "address": "127.0.0.32", "ttl": 60}],
            "sip1.peer.test": [{"type": "A", "address": PEER_IP, "ttl": 60}],
        }),
    );
    // carol's phone at the other domain.
    let carol_port = free_port();
    let run =
        Sipp::new("register.xml", carol_port).to(&peer).service(carol.name).auth(carol.name, carol.password).run();
    run.assert_success("carol's REGISTER at peer.test", &peer);
    let media = RtpPeer::bind();
    let carol_phone =
        Sipp::new("uas_answer.xml", carol_port).var("rtp_port", media.port).timeout(Duration::from_secs(30)).spawn();

    let alice = User::new("alice", "correct-horse-1");
    let extra = format!(
        "{}\n[tls]\ntrusted_ca = {:?}\n[dns]\nservers = [\"{}\"]\n[fraud]\noutside_destinations = [\"peer.test\"]\n",
        server_config(server_rtp_range()),
        ca.display().to_string(),
        dns.addr
    );
    let server = server_with_users(&extra, &[alice]);
    let call = Sipp::new("uac_dial.xml", free_port())
        .to(&server)
        .var("caller", "alice")
        .var("target", "sip:carol@peer.test")
        .auth(alice.name, alice.password)
        .timeout(Duration::from_secs(30))
        .run();
    call.assert_success("alice's call to sip:carol@peer.test", &server);
    let answered = carol_phone.wait();
    answered.assert_success("carol's phone at peer.test", &peer);
    let invite = answered.received().into_iter().find(|m| m.method() == "INVITE").expect("carol got the call");
    // It came through the other domain's server, which got it over TLS from ours.
    assert!(invite.text.contains("sip:carol@"), "{}", invite.text);
    assert!(
        peer.log().lines().any(|l| l.contains("connection opened") && l.contains("TLS")),
        "the other domain's server saw no TLS connection:\n{}",
        peer.log()
    );
    assert!(server.log().contains("outgoing connection opened"), "{}", server.log());
    assert!(
        server
            .log()
            .lines()
            .any(|l| l.contains("outgoing connection failed") && l.contains(&format!("127.0.0.32:{dead_port}"))),
        "the first server (down) was not tried first:\n{}",
        server.log()
    );
    let queries = dns.queries();
    assert!(queries.contains("peer.test NAPTR") && queries.contains("_sips._tcp.peer.test SRV"), "{queries}");

    // A domain the toll-fraud limits do not list is refused before anything is looked up.
    let refused = Sipp::new("uac_dial.xml", free_port())
        .to(&server)
        .var("caller", "alice")
        .var("target", "sip:mallory@elsewhere.test")
        .auth(alice.name, alice.password)
        .timeout(Duration::from_secs(10))
        .run();
    assert!(refused.statuses().contains(&403), "{}", refused.describe());
    assert!(!dns.queries().contains("elsewhere.test"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_emergency_number_goes_out_for_an_account_at_its_limits() {
    let e_port = free_port();
    let erin = User::new("erin", "silver-lining-4");
    let extra = format!(
        "{}\n\
         [[locations]]\naccount = \"erin\"\ncountry = \"GB\"\ncity = \"London\"\nstreet = \"Whitehall\"\nhouse_number = \"10\"\n\
         [[trunks]]\nname = \"carrier-e\"\nproxy = \"sip:{CARRIER_E_IP}:{e_port}\"\nemergency = true\n\
         [dialplan]\ncountry_code = \"44\"\n\
         [fraud]\nmax_calls_per_minute = 2\n",
        server_config(server_rtp_range()),
    );
    let server = server_with_users(&extra, &[erin]);
    // Two calls use erin's allowance; the third is refused.
    for attempt in 0..3 {
        let run = Sipp::new("uac_rejected.xml", free_port())
            .to(&server)
            .service(&format!("nobody{attempt}"))
            .var("caller", "erin")
            .auth(erin.name, erin.password)
            .timeout(Duration::from_secs(10))
            .run();
        let expected = if attempt < 2 { 404 } else { 403 };
        assert!(run.statuses().contains(&expected), "attempt {attempt}: {}", run.describe());
    }
    // 999 still goes out, on the emergency trunk, with erin's location.
    let media = RtpPeer::bind();
    let carrier = Sipp::new("carrier_answer.xml", e_port)
        .source_ip(CARRIER_E_IP)
        .var("rtp_port", media.port)
        .timeout(Duration::from_secs(30))
        .spawn();
    let call = Sipp::new("uac_dial.xml", free_port())
        .to(&server)
        .var("caller", "erin")
        .var("target", format!("sip:999@127.0.0.1:{}", server.ports.udp))
        .auth(erin.name, erin.password)
        .timeout(Duration::from_secs(30))
        .run();
    call.assert_success("erin's emergency call", &server);
    let at_carrier = carrier.wait();
    at_carrier.assert_success("the emergency carrier answering", &server);
    let invite = at_carrier.received().into_iter().find(|m| m.method() == "INVITE").expect("the carrier got the call");
    assert!(
        invite.start_line().starts_with(&format!("INVITE sip:999@{CARRIER_E_IP}:{e_port};user=phone ")),
        "{}",
        invite.text
    );
    let geolocation = invite.header("Geolocation").unwrap_or_else(|| panic!("no Geolocation:\n{}", invite.text));
    let cid = geolocation.trim().trim_start_matches("<cid:").trim_end_matches('>');
    assert!(invite.text.contains(&format!("Content-ID: <{cid}>")), "{}", invite.text);
    assert!(invite.body().contains("<ca:country>GB</ca:country>"), "{}", invite.text);
    assert!(
        invite.body().contains("<ca:A3>London</ca:A3><ca:RD>Whitehall</ca:RD><ca:HNO>10</ca:HNO>"),
        "{}",
        invite.text
    );
    assert!(server.log().contains("emergency call"), "{}", server.log());
}
