//! `sambung user ...` run as the built binary against a temporary configuration and database.

mod common;

use std::path::Path;

use common::cli::CliSetup;

use sambung_store::sqlx::{self, Connection as _};

fn database_of(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[test]
fn add_list_show_passwd_disable_enable_delete() {
    let s = CliSetup::new("cli", Some("user"));
    let out = s.ok(&[
        "add",
        "alice",
        "--password",
        "correct horse",
        "--display-name",
        "Alice Example",
        "--email",
        "alice@cli.example",
        "--extension",
        "201",
    ]);
    assert_eq!(out, "added user alice, extension 201\n");
    assert!(s.db().exists(), "user add creates the database");
    assert_eq!(s.ok(&["add", "bob", "--password", "battery staple"]), "added user bob\n");

    let list = s.ok(&["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    for column in ["USERNAME", "EXTENSION", "DISPLAY NAME", "EMAIL", "DISABLED", "DEVICES"] {
        assert!(lines[0].contains(column), "{list}");
    }
    let alice: Vec<&str> = lines[1].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(alice, ["alice", "201", "Alice Example", "alice@cli.example", "no", "0"]);
    let bob: Vec<&str> = lines[2].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(bob, ["bob", "-", "bob", "-", "no", "0"]);

    let show = s.ok(&["show", "alice"]);
    for expected in ["alice", "Alice Example", "alice@cli.example", "201", "cli.example", "devices:"] {
        assert!(show.contains(expected), "{show}");
    }
    assert!(!show.contains("argon2"), "no secrets in show: {show}");

    let before = show_field(&s.ok(&["show", "alice"]), "updated:");
    assert_eq!(
        s.ok(&["passwd", "alice", "--password", "new horse staple"]),
        "changed the password of alice (realm cli.example)\n"
    );
    assert!(!before.is_empty());

    assert_eq!(s.ok(&["disable", "alice"]), "disabled user alice\n");
    assert_eq!(show_field(&s.ok(&["show", "alice"]), "disabled:"), "yes");
    assert!(s.ok(&["list"]).lines().nth(1).unwrap().contains("yes"));
    assert_eq!(s.ok(&["enable", "alice"]), "enabled user alice\n");
    assert_eq!(show_field(&s.ok(&["show", "alice"]), "disabled:"), "no");

    assert_eq!(s.ok(&["delete", "alice"]), "deleted user alice\n");
    assert_eq!(s.ok(&["list"]).lines().count(), 2);
    s.fails(&["show", "alice"], 3, "unknown user \"alice\"");
}

fn show_field(show: &str, name: &str) -> String {
    show.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
}

#[test]
fn password_hashes_follow_the_configured_realm() {
    let s = CliSetup::new("cli", Some("user"));
    s.ok(&["add", "alice", "--password", "correct horse"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let account = runtime.block_on(async {
        let store = sambung_store::Store::open(&database_of(&s.db())).await.unwrap();
        store.account_by_username("alice").await.unwrap().unwrap()
    });
    use sambung_sip::digest::{Algorithm, ha1};
    assert_eq!(account.realm, "cli.example");
    assert_eq!(account.ha1_md5, ha1(Algorithm::Md5, "alice", "cli.example", "correct horse"));
    assert_eq!(account.ha1_sha256, ha1(Algorithm::Sha256, "alice", "cli.example", "correct horse"));
}

#[test]
fn errors_are_one_line_with_exit_codes() {
    let s = CliSetup::new("cli", Some("user"));
    let db = s.db().display().to_string();
    let missing = format!("database {db} does not exist (create it with `sambung user add` or by starting the server)");
    for args in [&["list"][..], &["show", "alice"], &["passwd", "alice", "--password", "x"], &["delete", "alice"]] {
        s.fails(args, 3, &missing);
    }
    s.fails(&["disable", "alice"], 3, &missing);
    assert!(!s.db().exists(), "only add creates the database");

    s.fails(
        &["add", "Alice", "--password", "correct horse"],
        2,
        "invalid username \"Alice\": use 1 to 64 characters of a-z, 0-9, '.', '_' and '-' (lower case)",
    );
    s.fails(&["add", "alice", "--password", "short"], 2, "weak password: it has fewer than 8 characters");
    s.fails(&["add", "alice", "--password", "alice1234"], 2, "weak password: it contains the username");
    s.fails(&["add", "alice", "--password", "password1"], 2, "weak password: it is one of the most common passwords");
    s.fails(&["add", "alice", "--password", "xxxxxxxxxx"], 2, "weak password: it repeats a single character");
    s.fails(
        &["add", "alice", "--password", "correct horse", "--extension", "2x"],
        2,
        "invalid extension \"2x\": use 2 to 10 digits",
    );
    s.fails(
        &["add", "alice", "--password", "correct horse", "--email", "nope"],
        2,
        "invalid email: expected an address like name@example.com",
    );

    s.ok(&["add", "alice", "--password", "correct horse", "--extension", "201"]);
    s.fails(&["add", "alice", "--password", "correct horse"], 4, "user \"alice\" already exists");
    s.fails(
        &["add", "bob", "--password", "correct horse", "--extension", "201"],
        4,
        "extension \"201\" is already taken",
    );
    s.fails(&["passwd", "alice", "--password", "12345678"], 2, "weak password: it is one of the most common passwords");
    for args in [
        &["show", "bob"][..],
        &["passwd", "bob", "--password", "correct horse"],
        &["disable", "bob"],
        &["enable", "bob"],
        &["delete", "bob"],
    ] {
        s.fails(args, 3, "unknown user \"bob\"");
    }
    let out = s.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
}

#[test]
fn password_from_standard_input() {
    let s = CliSetup::new("cli", Some("user"));
    let out = s.run_with_stdin(&["add", "carol"], "stdin horse battery\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.run_with_stdin(&["passwd", "carol"], "another stdin secret\r\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.run_with_stdin(&["add", "dave"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: no password given: standard input was empty\n");
    let out = s.run_with_stdin(&["add", "dave"], "dave\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: weak password: it has fewer than 8 characters\n");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = sambung_store::Store::open(&database_of(&s.db())).await.unwrap();
        assert!(store.verify_password("carol", "another stdin secret").await.unwrap());
        assert!(!store.verify_password("carol", "stdin horse battery").await.unwrap());
        assert_eq!(store.account_by_username("dave").await.unwrap(), None);
    });
}

#[test]
fn locked_database_is_reported() {
    let s = CliSetup::new("cli", Some("user"));
    s.ok(&["add", "alice", "--password", "correct horse"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Another process holds the write lock for longer than the busy timeout.
    let mut conn = runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&database_of(&s.db())).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE account_generation SET value = value + 1")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    });
    s.fails(&["disable", "alice"], 5, "database is locked by another process (still busy after 5 seconds)");
    // Reading still works while a writer holds the lock (WAL).
    assert!(s.ok(&["list"]).contains("alice"));
    runtime.block_on(async { sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap() });
    assert_eq!(s.ok(&["disable", "alice"]), "disabled user alice\n");
}

#[test]
fn import_from_csv_all_or_nothing_and_admin_role() {
    let s = CliSetup::new("cli-import", Some("user"));
    let bad = "username,password,extension\nann,river-stone-81,301\nben,short,302\nann,river-stone-81,303\n";
    let out = s.run_with_stdin(&["import", "-"], bad);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing imported") && err.contains("row 2 (ben)") && err.contains("row 3 (ann)"), "{err}");
    assert!(!err.contains("row 1"), "{err}");

    let csv = s.db().with_file_name("users.csv");
    std::fs::write(&csv, "username,password,extension,admin\nann,river-stone-81,301,yes\nben,forest-gate-92,302,\n")
        .unwrap();
    let out = s.ok(&["import", csv.to_str().unwrap()]);
    assert!(out.starts_with("imported 2 accounts in "), "{out}");
    assert_eq!(show_field(&s.ok(&["show", "ann"]), "administrator:"), "yes");
    assert_eq!(show_field(&s.ok(&["show", "ben"]), "administrator:"), "no");
    assert_eq!(s.ok(&["admin", "ben"]), "ben is an administrator\n");
    assert_eq!(s.ok(&["admin", "ann", "--revoke"]), "ann is no longer an administrator\n");
    assert_eq!(show_field(&s.ok(&["show", "ann"]), "administrator:"), "no");
    // The same file again: every row exists now.
    let out = s.run(&["import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = s.run(&["import", "/nonexistent/users.csv"]);
    assert_eq!(out.status.code(), Some(1));
}
