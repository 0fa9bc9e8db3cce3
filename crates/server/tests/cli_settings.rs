//! `sambung settings ...` and `sambung voicemail ...` run as the built binary against a
//! temporary configuration and database.

mod common;

use common::cli::CliSetup;

use sambung_store::sqlx::{self, Connection as _};
use sambung_store::{CallSettings, NewVoicemail, Store, VoicemailState};

/// What the settings tests add to the command-line setup.
trait Accounts {
    /// Creates alice (extension 201, with an email) and bob (extension 202).
    fn users(&self);
    /// Runs `f` with the store opened on this setup's database.
    fn store<T>(&self, f: impl AsyncFnOnce(&Store) -> T) -> T;
    fn account_id(&self, username: &str) -> i64;
    fn settings(&self, username: &str) -> CallSettings;
    fn pin_is(&self, username: &str, pin: &str) -> bool;
    fn generation(&self) -> i64;
}

impl Accounts for CliSetup {
    fn users(&self) {
        self.ok(&[
            "user",
            "add",
            "alice",
            "--password",
            "correct horse",
            "--extension",
            "201",
            "--email",
            "alice@cli.example",
        ]);
        self.ok(&["user", "add", "bob", "--password", "correct horse", "--extension", "202"]);
    }

    fn store<T>(&self, f: impl AsyncFnOnce(&Store) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(&self.url()).await.unwrap();
            let result = f(&store).await;
            store.close().await;
            result
        })
    }

    fn account_id(&self, username: &str) -> i64 {
        self.store(async |s| s.account_by_username(username).await.unwrap().unwrap().id)
    }

    fn settings(&self, username: &str) -> CallSettings {
        let id = self.account_id(username);
        self.store(async |s| s.call_settings(id).await.unwrap())
    }

    fn pin_is(&self, username: &str, pin: &str) -> bool {
        let id = self.account_id(username);
        self.store(async |s| s.verify_voicemail_pin(id, pin).await.unwrap())
    }

    fn generation(&self) -> i64 {
        self.store(async |s| s.accounts_generation().await.unwrap())
    }
}

/// The value printed after `label` by `settings show`.
fn field(show: &str, label: &str) -> String {
    show.lines().find_map(|l| l.strip_prefix(label)).map(|v| v.trim().to_owned()).unwrap_or_default()
}

const OUTSIDE: &str = "sip:+4930123456@gw.example;user=phone";

#[test]
fn show_and_set_every_setting() {
    let s = CliSetup::new("cli-settings", None);
    s.users();
    let show = s.ok(&["settings", "show", "alice"]);
    let defaults = [
        ("user:", "alice"),
        ("forward always:", "-"),
        ("forward when busy:", "-"),
        ("forward on no answer:", "-"),
        ("forward when offline:", "-"),
        ("no-answer seconds:", "20"),
        ("do not disturb:", "off"),
        ("voicemail:", "on"),
        ("voicemail PIN:", "not set"),
        ("voicemail email:", "alice@cli.example (the account's email)"),
        ("attach recording:", "on"),
        ("voice messages by email:", "off"),
        ("greeting:", "default"),
        ("messages:", "0 new, 0 saved"),
    ];
    assert_eq!(show.lines().count(), defaults.len(), "{show}");
    for (label, value) in defaults {
        assert_eq!(field(&show, label), value, "{label} in\n{show}");
    }
    let show_bob = s.ok(&["settings", "show", "bob"]);
    assert_eq!(field(&show_bob, "voicemail email:"), "- (the account has no email: no mail is sent)");

    let generation = s.generation();
    let out = s.ok(&[
        "settings",
        "set",
        "alice",
        "--forward-always",
        "BOB",
        "--forward-busy",
        "202",
        "--forward-no-answer",
        OUTSIDE,
        "--forward-offline",
        "sip:desk@192.0.2.7:5061",
        "--no-answer-seconds",
        "45",
        "--dnd",
        "on",
        "--voicemail",
        "off",
        "--pin",
        "024680",
        "--voicemail-email",
        "voicemail@other.example",
        "--attach",
        "off",
        "--voice-messages-email",
        "on",
    ]);
    assert!(out.starts_with("changed the call settings of alice\n\n"), "{out}");
    assert!(s.generation() > generation, "a running server must notice the change");
    let expected = CallSettings {
        forward_always: Some("bob".into()),
        forward_busy: Some("202".into()),
        forward_no_answer: Some(OUTSIDE.into()),
        forward_offline: Some("sip:desk@192.0.2.7:5061".into()),
        no_answer_secs: 45,
        dnd: true,
        voicemail: false,
        voicemail_email: Some("voicemail@other.example".into()),
        voicemail_attach: false,
        voice_messages_email: true,
        pin_set: true,
    };
    assert_eq!(s.settings("alice"), expected);
    assert!(s.pin_is("alice", "024680"));
    assert!(!s.pin_is("alice", "24680"));
    assert_eq!(s.settings("bob"), CallSettings::default(), "bob untouched");

    let show = s.ok(&["settings", "show", "alice"]);
    assert_eq!(out.strip_prefix("changed the call settings of alice\n\n"), Some(show.as_str()), "set prints show");
    for (label, value) in [
        ("forward always:", "bob"),
        ("forward when busy:", "202"),
        ("forward on no answer:", OUTSIDE),
        ("forward when offline:", "sip:desk@192.0.2.7:5061"),
        ("no-answer seconds:", "45"),
        ("do not disturb:", "on"),
        ("voicemail:", "off"),
        ("voicemail PIN:", "set"),
        ("voicemail email:", "voicemail@other.example"),
        ("attach recording:", "off"),
        ("voice messages by email:", "on"),
    ] {
        assert_eq!(field(&show, label), value, "{label} in\n{show}");
    }
    assert!(!show.contains("024680") && !show.contains("argon2"), "no PIN in show: {show}");

    // One option changes one setting; "none" removes forwarding and the mail address.
    s.ok(&["settings", "set", "alice", "--forward-always", "none", "--voicemail-email", "none", "--dnd", "off"]);
    let after = s.settings("alice");
    assert_eq!(after, CallSettings { forward_always: None, voicemail_email: None, dnd: false, ..expected.clone() });
    s.ok(&["settings", "set", "alice", "--pin", "1357"]);
    assert_eq!(s.settings("alice"), after, "a new PIN changes no other setting");
    assert!(s.pin_is("alice", "1357") && !s.pin_is("alice", "024680"));
    s.ok(&["settings", "set", "alice", "--no-answer-seconds", "5"]);
    s.ok(&["settings", "set", "alice", "--no-answer-seconds", "300", "--voicemail", "on", "--attach", "on"]);
    let last = s.settings("alice");
    assert_eq!((last.no_answer_secs, last.voicemail, last.voicemail_attach), (300, true, true));
    assert_eq!(last.forward_busy.as_deref(), Some("202"));
}

#[test]
fn refused_changes_keep_everything() {
    let s = CliSetup::new("cli-settings", None);
    let db = s.dir.join("data").join("sambung.db").display().to_string();
    s.fails(
        &["settings", "show", "alice"],
        3,
        &format!("database {db} does not exist (create it with `sambung user add` or by starting the server)"),
    );
    s.fails(
        &["voicemail", "list", "alice"],
        3,
        &format!("database {db} does not exist (create it with `sambung user add` or by starting the server)"),
    );

    s.users();
    s.ok(&[
        "settings",
        "set",
        "alice",
        "--forward-busy",
        "bob",
        "--no-answer-seconds",
        "30",
        "--dnd",
        "on",
        "--pin",
        "1234",
    ]);
    let stored = s.settings("alice");
    let generation = s.generation();

    s.fails(&["settings", "show", "carol"], 3, "unknown user \"carol\"");
    s.fails(&["settings", "set", "carol", "--dnd", "on"], 3, "unknown user \"carol\"");
    s.fails(
        &["settings", "set", "Carol!", "--dnd", "on"],
        2,
        "invalid username \"Carol!\": use 1 to 64 characters of a-z, 0-9, '.', '_' and '-' (lower case)",
    );
    s.fails(
        &["settings", "set", "alice", "--forward-busy", "carol"],
        3,
        "--forward-busy: no user or extension \"carol\" (use an existing username or extension, or a sip:/sips: URI)",
    );
    s.fails(
        &["settings", "set", "alice", "--forward-no-answer", "299"],
        3,
        "--forward-no-answer: no user or extension \"299\" (use an existing username or extension, or a sip:/sips: URI)",
    );
    s.fails(
        &["settings", "set", "alice", "--forward-always", "201"],
        2,
        "--forward-always: alice cannot forward calls to \"201\", which is alice again",
    );
    s.fails(
        &["settings", "set", "alice", "--forward-offline", "tel:+4930123"],
        2,
        "--forward-offline: \"tel:+4930123\" is not a valid sip:/sips: URI (only sip: and sips: are supported)",
    );
    s.fails(
        &["settings", "set", "alice", "--forward-offline", "sips:desk@192.0.2.7:5061"],
        2,
        "--forward-offline: \"sips:desk@192.0.2.7:5061\" is not a valid sip:/sips: URI (only UDP targets can be called \
         yet (no sips: or transport=tcp/tls))",
    );
    let out = s.run(&["settings", "set", "alice", "--forward-offline", "sip:bob@"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: --forward-offline: \"sip:bob@\" is not a valid sip:/sips: URI ("), "{err}");
    s.fails(
        &["settings", "set", "alice", "--forward-busy", "bob smith"],
        2,
        "--forward-busy: invalid forwarding target \"bob smith\": use a username, an extension or a sip:/sips: URI, \
         without spaces",
    );
    for pin in ["12", "12ab", "1234567890123", ""] {
        s.fails(&["settings", "set", "alice", "--pin", pin], 2, "invalid PIN: use 4 to 12 digits");
    }
    for secs in ["4", "301", "0"] {
        s.fails(
            &["settings", "set", "alice", "--no-answer-seconds", secs],
            2,
            "invalid no-answer seconds: use 5 to 300 seconds",
        );
    }
    s.usage_error(&["settings", "set", "alice", "--no-answer-seconds", "twenty"], "--no-answer-seconds");
    s.usage_error(&["settings", "set", "alice", "--dnd", "yes"], "possible values: on, off");
    s.fails(
        &["settings", "set", "alice", "--voicemail-email", "alice.example.com"],
        2,
        "invalid voicemail email: expected one address like name@example.com",
    );
    s.fails(
        &["settings", "set", "alice"],
        2,
        "nothing to change: give at least one option (see `sambung settings set --help`)",
    );
    // Good options beside one bad one: nothing at all is written.
    s.fails(
        &["settings", "set", "alice", "--dnd", "off", "--forward-always", "bob", "--pin", "99"],
        2,
        "invalid PIN: use 4 to 12 digits",
    );
    s.fails(
        &["settings", "set", "alice", "--pin", "9999", "--no-answer-seconds", "1000"],
        2,
        "invalid no-answer seconds: use 5 to 300 seconds",
    );
    s.fails(
        &["settings", "set", "alice", "--pin", "9999", "--dnd", "off", "--forward-offline", "nobody"],
        3,
        "--forward-offline: no user or extension \"nobody\" (use an existing username or extension, or a sip:/sips: \
         URI)",
    );

    assert_eq!(s.settings("alice"), stored, "every refused change left the settings as they were");
    assert!(s.pin_is("alice", "1234"), "and the PIN");
    assert!(!s.pin_is("alice", "9999"));
    assert_eq!(s.generation(), generation, "nothing was written");
}

/// A minimal WAV file: 8 kHz 16-bit mono, `samples` samples of a ramp.
fn wav(samples: u16) -> Vec<u8> {
    let data_len = u32::from(samples) * 2;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        w.extend_from_slice(&(i.wrapping_mul(97) as i16).to_le_bytes());
    }
    w
}

#[test]
fn voicemail_list_and_export() {
    let s = CliSetup::new("cli-settings", None);
    s.users();
    assert_eq!(s.ok(&["voicemail", "list", "alice"]), "ID  STATE  CALLER  TIME  DURATION\n", "empty mailbox");
    let (alice, bob) = (s.account_id("alice"), s.account_id("bob"));
    let (first, second, bobs) = s.store(async |store| {
        let new = |account_id, name: &str, number: Option<&str>, at, ms, samples| NewVoicemail {
            account_id,
            caller_uri: format!("sip:{}@cli.example", name.to_lowercase()),
            caller_name: name.into(),
            caller_number: number.map(str::to_owned),
            created_at: at,
            duration_ms: ms,
            audio: wav(samples),
        };
        let first = store.store_voicemail(new(alice, "Bob", Some("202"), 1_795_300_658, 61_400, 4000)).await.unwrap();
        let second = store.store_voicemail(new(alice, "Carol", None, 1_795_300_700, 3_000, 2400)).await.unwrap();
        let bobs = store.store_voicemail(new(bob, "Alice", Some("201"), 1_795_300_800, 1_000, 800)).await.unwrap();
        store.set_voicemail_state(first.id, VoicemailState::Saved).await.unwrap();
        (first.id, second.id, bobs.id)
    });

    let list = s.ok(&["voicemail", "list", "alice"]);
    let rows: Vec<Vec<&str>> =
        list.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()).collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert_eq!(rows[0], ["ID", "STATE", "CALLER", "TIME", "DURATION"]);
    let first_s = first.to_string();
    let second_s = second.to_string();
    assert_eq!(rows[1], [&*first_s, "saved", "Bob (202) <sip:bob@cli.example>", "2026-11-21 22:37:38 UTC", "1:01"]);
    assert_eq!(rows[2], [&*second_s, "new", "Carol <sip:carol@cli.example>", "2026-11-21 22:38:20 UTC", "0:03"]);
    assert!(!list.contains("Alice"), "only alice's own messages: {list}");
    assert_eq!(field(&s.ok(&["settings", "show", "alice"]), "messages:"), "1 new, 1 saved");

    let file = s.dir.join("first.wav");
    let out = s.ok(&["voicemail", "export", "alice", &first_s, file.to_str().unwrap()]);
    assert_eq!(
        out,
        format!("wrote voicemail message {first} of alice (1:01, {} bytes) to {}\n", wav(4000).len(), file.display())
    );
    assert_eq!(std::fs::read(&file).unwrap(), wav(4000), "the recording, byte for byte");
    std::fs::write(&file, b"old content that is longer than nothing").unwrap();
    s.ok(&["voicemail", "export", "alice", &second_s, file.to_str().unwrap()]);
    assert_eq!(std::fs::read(&file).unwrap(), wav(2400), "an existing file is replaced");
    let states: Vec<VoicemailState> =
        s.store(async |store| store.voicemails(alice, None).await.unwrap().into_iter().map(|m| m.state).collect());
    assert_eq!(states, [VoicemailState::Saved, VoicemailState::New], "export leaves the state alone");

    let other = s.dir.join("other.wav");
    let other_str = other.to_str().unwrap();
    s.fails(
        &["voicemail", "export", "alice", &bobs.to_string(), other_str],
        3,
        &format!("user alice has no voicemail message {bobs}"),
    );
    s.fails(&["voicemail", "export", "alice", "999999", other_str], 3, "user alice has no voicemail message 999999");
    assert!(!other.exists(), "nothing written for an unknown message");
    s.fails(&["voicemail", "export", "carol", &first_s, other_str], 3, "unknown user \"carol\"");
    s.fails(&["voicemail", "list", "carol"], 3, "unknown user \"carol\"");
    s.usage_error(&["voicemail", "export", "alice", "first", other_str], "<ID>");
    let missing_dir = s.dir.join("no-such-dir").join("x.wav");
    let out = s.run(&["voicemail", "export", "alice", &first_s, missing_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("error: cannot write {}: ", missing_dir.display())), "{err}");

    // Deleting the account deletes its messages and settings.
    s.ok(&["settings", "set", "alice", "--dnd", "on"]);
    s.ok(&["user", "delete", "alice"]);
    let (left, settings) =
        s.store(async |store| (store.all_voicemail_counts().await.unwrap(), store.all_call_settings().await.unwrap()));
    assert_eq!(left, [(bob, 1, 0)]);
    assert!(settings.is_empty());
}

#[test]
fn locked_database_is_reported() {
    let s = CliSetup::new("cli-settings", None);
    s.users();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Another process holds the write lock for longer than the busy timeout.
    let mut conn = runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&s.url()).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE account_generation SET value = value + 1")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    });
    s.fails(
        &["settings", "set", "alice", "--dnd", "on"],
        5,
        "database is locked by another process (still busy after 5 seconds)",
    );
    // Reading still works while a writer holds the lock (WAL).
    assert_eq!(field(&s.ok(&["settings", "show", "alice"]), "do not disturb:"), "off");
    runtime.block_on(async { sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap() });
    s.ok(&["settings", "set", "alice", "--dnd", "on"]);
    assert!(s.settings("alice").dnd);
}
