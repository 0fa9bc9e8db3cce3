//! The built `sambung` on PostgreSQL: `[database] url` names a fresh schema in the database of
//! `SAMBUNG_TEST_POSTGRES_URL` (scripts/test.sh starts a throwaway cluster and exports it), the
//! accounts are made with `sambung user add` against that configuration, two SIPp phones register
//! and alice calls bob (INVITE, 407, INVITE with credentials, 200, ACK, 3 s of PCMU through the
//! relay, BYE); then the accounts, both registrations and the call record are read back from
//! PostgreSQL itself, and `sambung user list` shows the accounts through the same configuration.
//!
//! Without `SAMBUNG_TEST_POSTGRES_URL` (a developer running `cargo test` by hand) the test says so
//! on standard error and passes without running; with `SAMBUNG_REQUIRE_POSTGRES=1` (exported by
//! scripts/test.sh, so in CI) a missing URL fails it.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::clients::{
    RtpPeer, Sipp, SippResult, User, add_user, poll_until, server_config, server_rtp_range, tail, tone_ulaw,
};
use common::{Server, free_port, temp_dir};
use sambung_store::sqlx::{self, Connection as _, PgConnection};

const ALICE: User<'static> = User::new("alice", "Wonder-Land-77");
const BOB: User<'static> = User { name: "bob", password: "Builder-Can-42", extension: Some("1002") };

const POSTGRES_ENV: &str = "SAMBUNG_TEST_POSTGRES_URL";
const REQUIRE_ENV: &str = "SAMBUNG_REQUIRE_POSTGRES";

/// The PostgreSQL server to use, or `None` (said loudly) when none is configured and none is
/// required.
fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{POSTGRES_ENV} is unset but {REQUIRE_ENV}=1: the PostgreSQL test may not be skipped \
                 (./scripts/test.sh starts a PostgreSQL cluster and sets both)"
            );
            // Straight to the process's stderr: the test harness captures eprintln! of a passing
            // test, and this must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED whole_call_on_postgresql: {POSTGRES_ENV} is unset, so the server was NOT tested \
                 against PostgreSQL. ***\n*** Run ./scripts/test.sh (it starts a throwaway cluster), or set \
                 {POSTGRES_ENV}. ***\n"
            );
            None
        }
    }
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(future)
}

/// A schema of its own in the PostgreSQL database, dropped with everything in it when this
/// goes out of scope (passing or failing). `url` points the server at it (search_path).
struct Schema {
    base: String,
    name: String,
    url: String,
}

impl Schema {
    fn create(base: &str) -> Schema {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("sambung_server_test_{}_{nanos}", std::process::id());
        block_on(async {
            let mut conn =
                PgConnection::connect(base).await.unwrap_or_else(|e| panic!("connect to {POSTGRES_ENV} ({base}): {e}"));
            let sql = format!("CREATE SCHEMA {name}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("create the test's schema");
            conn.close().await.ok();
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Schema { base: base.to_owned(), name, url }
    }

    /// Runs `f` on a connection whose search_path is the schema.
    fn query<T>(&self, f: impl AsyncFnOnce(&mut PgConnection) -> T) -> T {
        block_on(async {
            let mut conn = PgConnection::connect(&self.url).await.expect("connect to the test's schema");
            let out = f(&mut conn).await;
            conn.close().await.ok();
            out
        })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&self.base).await {
                let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                conn.close().await.ok();
            }
        });
    }
}

/// Registers `user` from SIPp on `port`.
fn register(server: &Server, user: &User<'_>, port: u16) {
    Sipp::new("register.xml", port)
        .to(server)
        .service(user.name)
        .auth(user.name, user.password)
        .run()
        .assert_success(&format!("REGISTER as {}", user.name), server);
}

/// The Call-ID of the INVITE alice's SIPp sent.
fn call_id(run: &SippResult) -> String {
    let invite = run.sent().into_iter().find(|m| m.method() == "INVITE").expect("alice sent an INVITE");
    invite.header("Call-ID").expect("a Call-ID").to_owned()
}

#[test]
fn whole_call_on_postgresql() {
    let Some(base) = postgres_url() else { return };
    let schema = Schema::create(&base);
    let rtp = server_rtp_range();
    let extra = format!("{}\n[database]\nurl = {:?}\n", server_config(rtp), schema.url);

    // The accounts, made by the CLI against the same configuration, before the server starts.
    let dir = temp_dir("postgres");
    let config = dir.join("sambung.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n{extra}\n", dir.join("data").display().to_string()))
        .expect("write config");
    for user in [ALICE, BOB] {
        add_user(&config, &user);
    }
    let server = Server::start_owning(dir.clone(), &extra);

    // Both phones register; bob answers, alice calls him and streams PCMU, then hangs up.
    let (alice_port, bob_port) = (free_port(), free_port());
    register(&server, &ALICE, alice_port);
    register(&server, &BOB, bob_port);
    let bob_media = RtpPeer::bind();
    let bob =
        Sipp::new("uas_answer.xml", bob_port).var("rtp_port", bob_media.port).timeout(Duration::from_secs(25)).spawn();
    let caller = Sipp::new("uac_call.xml", alice_port)
        .to(&server)
        .service(BOB.name)
        .var("caller", ALICE.name)
        .auth(ALICE.name, ALICE.password)
        .timeout(Duration::from_secs(25));
    let audio = tone_ulaw(0, 8000 * 5);
    std::fs::write(caller.dir.join("speech.ulaw"), &audio).unwrap();
    let mut alice = caller.spawn();
    // bob's phone talks back once it has the relay's address from the offer.
    let mut offer: Option<SocketAddr> = None;
    poll_until(Duration::from_secs(25), || {
        if offer.is_none()
            && let Some(line) = bob.logs().lines().find_map(|l| l.find("offer c=").map(|at| l[at..].to_owned()))
        {
            // "offer c=IN IP4 ADDRESS m=audio PORT"
            let words: Vec<&str> = line.split_whitespace().collect();
            offer = words.get(3).zip(words.last()).and_then(|(a, p)| format!("{a}:{p}").parse().ok());
            if let Some(offer) = offer {
                bob_media.send_to(offer);
            }
        }
        alice.exited()
    });
    let alice = alice.wait();
    let bob = bob.wait();
    alice.assert_success("alice's call (uac_call.xml)", &server);
    bob.assert_success("bob answering (uas_answer.xml)", &server);
    let relayed = bob_media.received().iter().filter(|p| p.payload_type == 0 && p.payload.len() == 160).count();
    assert!(relayed >= 100, "bob's phone got {relayed} of alice's ~150 RTP packets through the relay");
    let call_id = call_id(&alice);

    // PostgreSQL holds it all: nothing went to a SQLite file in the data directory.
    assert!(!dir.join("data/sambung.db").exists(), "the server made a SQLite database beside PostgreSQL");
    let accounts: Vec<(String, Option<String>)> = schema.query(async |c| {
        sqlx::query_as("SELECT username, extension FROM accounts ORDER BY username").fetch_all(c).await.unwrap()
    });
    assert_eq!(accounts, [("alice".to_owned(), None), ("bob".to_owned(), Some("1002".to_owned()))]);
    let bindings: Vec<(String, String)> = schema.query(async |c| {
        sqlx::query_as(
            "SELECT a.username, b.contact FROM bindings b JOIN accounts a ON a.id = b.account_id ORDER BY a.username",
        )
        .fetch_all(c)
        .await
        .unwrap()
    });
    assert!(
        bindings.len() == 2
            && bindings[0].0 == "alice"
            && bindings[0].1.contains(&format!("127.0.0.1:{alice_port}"))
            && bindings[1].0 == "bob"
            && bindings[1].1.contains(&format!("127.0.0.1:{bob_port}")),
        "alice's and bob's registrations in PostgreSQL: {bindings:?}"
    );
    // The call record is written after the BYE by the store task: wait for it.
    type Cdr = (String, String, Option<i64>, i64, i32, String);
    let select =
        "SELECT caller, callee, answered_at, duration_secs, cause_code, hangup_side FROM cdrs WHERE call_id = $1";
    let mut cdrs: Vec<Cdr> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cdrs.is_empty() && Instant::now() < deadline {
        cdrs = schema.query(async |c| sqlx::query_as(select).bind(&call_id).fetch_all(c).await.unwrap());
        if cdrs.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(cdrs.len(), 1, "one call record for {call_id} in PostgreSQL within 10 s\n{}", tail(&server.log(), 6000));
    let (caller, callee, answered_at, duration, cause, side) = cdrs.remove(0);
    assert_eq!((caller.as_str(), callee.as_str()), ("alice", "bob"));
    assert!(answered_at.is_some(), "the call was answered");
    assert!((2..=10).contains(&duration), "alice talked about 3 s; the record says {duration} s");
    assert_eq!((cause, side.as_str()), (200, "caller"), "alice hung up a call answered with 200");

    // The CLI reads the same database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sambung"))
        .args(["user", "list", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sambung user list");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && listed.contains("alice") && listed.contains("bob"), "sambung user list: {listed}");
    drop(server);
}
