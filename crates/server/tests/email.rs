//! Voicemail email against a real SMTP server on 127.0.0.1: aiosmtpd, run by
//! `tests/tools/smtp-sink`, which keeps each message it receives and decodes it with Python's
//! email package (a MIME parser independent of lettre). The sending tests drive
//! [`sambung_server::mail::Mailer`] directly; the outbox tests run the worker on a temporary
//! SQLite store.
//!
//! The sink's first run makes a Python venv with aiosmtpd from PyPI (python3 and python3-venv).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::free_port;
use common::smtp::{ARRIVAL, Received, Sink, scratch_dir};

use sambung_server::config::{EmailConfig, SmtpTls};
use sambung_server::mail::{self, Attachment, Email, MailError, Mailer};
use sambung_store::sqlx::{self, SqlitePool};
use sambung_store::{NewMail, Store};

/// What the server library logs in this test process (every test of this file shares it):
/// `tracing` output, without colours, collected from the first call on.
fn logs() -> &'static Mutex<String> {
    static LOGS: OnceLock<Mutex<String>> = OnceLock::new();
    static INIT: Once = Once::new();
    let collected = LOGS.get_or_init(|| Mutex::new(String::new()));
    INIT.call_once(|| {
        struct Collect;
        impl std::io::Write for Collect {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap_or_else(|p| p.into_inner()).push_str(&String::from_utf8_lossy(bytes));
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt().with_ansi(false).with_writer(|| Collect).try_init();
    });
    collected
}

/// Waits until the log holds `text`; panics after `limit`.
async fn wait_logged(text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !logs().lock().unwrap_or_else(|p| p.into_inner()).contains(text) {
        assert!(Instant::now() < deadline, "{text:?} not logged within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(port: u16, tls: SmtpTls) -> EmailConfig {
    EmailConfig {
        server: Some("127.0.0.1".into()),
        port,
        tls,
        from: "Sambung Voicemail <voicemail@sambung.test>".into(),
        timeout_seconds: 20,
        ..EmailConfig::default()
    }
}

/// One second of a 440 Hz tone as a 16-bit mono 8 kHz WAV file, and every byte value after it
/// (in a trailing chunk) so that no byte survives base64 by luck.
fn wav_file() -> Vec<u8> {
    let samples: Vec<i16> =
        (0..8000).map(|n| ((n as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 12000.0) as i16).collect();
    let data_len = samples.len() as u32 * 2;
    let extra: Vec<u8> = (0..=255u8).collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(4 + 24 + 8 + data_len + 8 + extra.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav.extend_from_slice(b"junk");
    wav.extend_from_slice(&(extra.len() as u32).to_le_bytes());
    wav.extend_from_slice(&extra);
    wav
}

/// A test CA and a certificate for 127.0.0.1 signed by it, written as PEM files into `dir`.
/// Returns the CA certificate's PEM and the server certificate and key paths.
fn test_ca(dir: &Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Sambung test mail CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    let (cert_path, key_path) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (ca_cert.pem(), cert_path, key_path)
}

fn voicemail_email<'a>(wav: &'a [u8]) -> Email<'a> {
    Email {
        to: "alice@sambung.test",
        subject: "Neue Sprachnachricht von Zoë (1002)",
        body: "Zoë hat Ihnen eine Nachricht hinterlassen: 1 s.\nCall back: 1002 — ☎",
        attachment: Some(Attachment { file_name: "voicemail-1.wav", content_type: "audio/wav", data: wav }),
        message_id: Some("<sambung.1.1700000000@sambung.test>"),
    }
}

fn text_of(received: &Received) -> String {
    received.text.as_deref().unwrap_or_default().replace("\r\n", "\n").trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_smtp_delivers_the_text_and_the_wav_attachment() {
    let sink = Sink::start("plain", 0, &[]);
    let mailer = Mailer::new(&config(sink.port, SmtpTls::None), None).expect("mailer");
    let wav = wav_file();
    mailer.send(&voicemail_email(&wav)).await.expect("send");

    let received = sink.wait_for(1);
    let m = &received[0];
    assert_eq!(m.mail_from, "voicemail@sambung.test");
    assert_eq!(m.rcpt_tos, ["alice@sambung.test"]);
    assert_eq!(m.from, "Sambung Voicemail <voicemail@sambung.test>");
    assert_eq!(m.to, "alice@sambung.test");
    assert_eq!(m.subject, "Neue Sprachnachricht von Zoë (1002)");
    assert_eq!(m.message_id.as_deref(), Some("<sambung.1.1700000000@sambung.test>"));
    assert_eq!(m.content_type, "multipart/mixed");
    assert_eq!(text_of(m), "Zoë hat Ihnen eine Nachricht hinterlassen: 1 s.\nCall back: 1002 — ☎");
    assert!(!m.tls && m.auth_user.is_none());
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.filename.as_deref(), Some("voicemail-1.wav"));
    assert_eq!(a.content_type, "audio/wav");
    assert_eq!(a.transfer_encoding.as_deref(), Some("base64"));
    assert_eq!(a.data.len(), wav.len());
    assert!(a.data == wav, "the attachment decodes to other bytes than were sent");
    // Every line on the wire within RFC 5322's 998 characters.
    assert!(m.raw.split(|&b| b == b'\n').all(|line| line.len() <= 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_plain_with_the_right_credentials_only() {
    let sink = Sink::start("auth", 0, &["--auth", "voicemail:s3cret pass"]);
    let email = Email { to: "bob@sambung.test", subject: "Hello", body: "Hi", attachment: None, message_id: None };

    let anonymous = Mailer::new(&config(sink.port, SmtpTls::None), None).expect("mailer");
    let err = anonymous.send(&email).await.expect_err("the server wants AUTH");
    assert!(err.is_permanent(), "a 530 is permanent: {err}");

    let wrong = EmailConfig {
        username: Some("voicemail".into()),
        password: Some("wrong".into()),
        ..config(sink.port, SmtpTls::None)
    };
    let err = Mailer::new(&wrong, None).expect("mailer").send(&email).await.expect_err("wrong password");
    assert!(matches!(err, MailError::Smtp(_)) && err.is_permanent(), "{err}");

    let right = EmailConfig { password: Some("s3cret pass".into()), ..wrong };
    Mailer::new(&right, None).expect("mailer").send(&email).await.expect("send with credentials");
    let received = sink.wait_for(1);
    assert_eq!(received.len(), 1, "only the authenticated attempt was accepted");
    assert_eq!(received[0].auth_user.as_deref(), Some("voicemail"));
    assert_eq!(received[0].subject, "Hello");
    assert_eq!(text_of(&received[0]), "Hi");
    assert!(received[0].attachments.is_empty());
    assert_eq!(received[0].content_type, "text/plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_test_ca_and_auth() {
    let certs = scratch_dir("starttls-certs");
    let (ca_pem, cert, key) = test_ca(&certs);
    let (cert, key) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let sink = Sink::start("starttls", 0, &["--starttls", cert, key, "--require-starttls", "--auth", "vm:pw"]);
    let config = EmailConfig {
        username: Some("vm".into()),
        password: Some("pw".into()),
        ..config(sink.port, SmtpTls::Starttls)
    };
    let wav = wav_file();

    // Without the test CA the certificate is unknown: nothing is sent, and it may be retried.
    let err = Mailer::new(&config, None).expect("mailer").send(&voicemail_email(&wav)).await.expect_err("untrusted");
    assert!(!err.is_permanent(), "{err}");

    Mailer::new(&config, Some(ca_pem.as_bytes())).expect("mailer").send(&voicemail_email(&wav)).await.expect("send");
    let received = sink.wait_for(1);
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the message went over STARTTLS");
    assert_eq!(received[0].auth_user.as_deref(), Some("vm"));
    assert!(received[0].attachments[0].data == wav);
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_not_opportunistic() {
    // A server without STARTTLS: the mailer refuses to go on in the clear.
    let sink = Sink::start("no-starttls", 0, &[]);
    let mailer = Mailer::new(&config(sink.port, SmtpTls::Starttls), None).expect("mailer");
    let email = Email { to: "bob@sambung.test", subject: "s", body: "b", attachment: None, message_id: None };
    let err = mailer.send(&email).await.expect_err("no STARTTLS offered");
    assert!(matches!(err, MailError::Smtp(_)), "{err}");
    // No wait needed: the sink stores a message before it answers the DATA, and a send returns
    // only after that answer, so a message sent in the clear would already be there.
    assert!(sink.received().is_empty(), "nothing may be sent in the clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_with_a_test_ca() {
    let certs = scratch_dir("tls-certs");
    let (ca_pem, cert, key) = test_ca(&certs);
    let sink = Sink::start("tls", 0, &["--tls", cert.to_str().expect("path"), key.to_str().expect("path")]);
    let mailer = Mailer::new(&config(sink.port, SmtpTls::Tls), Some(ca_pem.as_bytes())).expect("mailer");
    let wav = wav_file();
    mailer.send(&voicemail_email(&wav)).await.expect("send");
    let received = sink.wait_for(1);
    assert!(received[0].tls);
    assert!(received[0].attachments[0].data == wav);
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out() {
    // Accepts the connection and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = EmailConfig { timeout_seconds: 1, ..config(port, SmtpTls::None) };
    let mailer = Mailer::new(&config, None).expect("mailer");
    let email = Email { to: "bob@sambung.test", subject: "s", body: "b", attachment: None, message_id: None };
    let started = Instant::now();
    let err = mailer.send(&email).await.expect_err("no greeting");
    assert!(!err.is_permanent(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_a_transient_error() {
    let mailer = Mailer::new(&config(free_port(), SmtpTls::None), None).expect("mailer");
    let email = Email { to: "bob@sambung.test", subject: "s", body: "b", attachment: None, message_id: None };
    let err = mailer.send(&email).await.expect_err("connection refused");
    assert!(matches!(err, MailError::Smtp(_)) && !err.is_permanent(), "{err}");
}

// ---- The outbox worker, on a temporary SQLite store ----

/// A fresh SQLite store in a temporary directory, and a second connection to read the outbox's
/// columns that the store's API does not show (state, attempts, last error).
struct TestStore {
    store: Store,
    raw: SqlitePool,
    dir: PathBuf,
}

impl TestStore {
    async fn new(name: &str) -> TestStore {
        let dir = scratch_dir(&format!("{name}-db"));
        let url = format!("sqlite://{}", dir.join("sambung.db").display());
        let store = Store::open(&url).await.expect("open store");
        let raw = SqlitePool::connect(&url).await.expect("second connection");
        TestStore { store, raw, dir }
    }

    async fn enqueue(&self, mail: NewMail) -> i64 {
        self.store.enqueue_mail(mail, unix_now()).await.expect("enqueue")
    }

    /// (state, attempts, last_error) of mail `id`.
    async fn row(&self, id: i64) -> (String, i64, Option<String>) {
        sqlx::query_as("SELECT state, attempts, last_error FROM mail_outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&self.raw)
            .await
            .expect("outbox row")
    }

    /// Polls mail `id`'s row until `done` holds (panics after `limit`).
    async fn wait_row(
        &self,
        id: i64,
        limit: Duration,
        what: &str,
        done: impl Fn(&(String, i64, Option<String>)) -> bool,
    ) -> (String, i64, Option<String>) {
        let deadline = Instant::now() + limit;
        loop {
            let row = self.row(id).await;
            if done(&row) {
                return row;
            }
            assert!(Instant::now() < deadline, "mail {id} not {what} within {limit:?}: {row:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close(self) {
        self.raw.close().await;
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

fn queued_voicemail(wav: &[u8]) -> NewMail {
    NewMail {
        to: "alice@sambung.test".into(),
        subject: "New voicemail from Zoë (1002)".into(),
        body: "Zoë left you a message of 1 s.".into(),
        attachment: Some(("voicemail.wav".into(), "audio/wav".into(), wav.to_vec())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_sends_a_queued_mail_when_woken() {
    let sink = Sink::start("worker-send", 0, &[]);
    let db = TestStore::new("worker-send").await;
    let wav = wav_file();
    // A first mail, queued before the worker starts (no wake): once it is recorded as sent, the
    // worker has finished a pass and found nothing more due, so it sleeps for up to a minute
    // (MAX_SLEEP) and only a wake brings the next mail out quickly. (Between that record and
    // its sleep it makes one more query; a mail queued in that moment would go out a second
    // later without the wake. The 50 ms polling of `wait_row` makes that unlikely.)
    let first = db.enqueue(queued_voicemail(&wav)).await;
    let worker = mail::spawn(db.store.clone(), config(sink.port, SmtpTls::None));
    db.wait_row(first, ARRIVAL, "recorded as sent", |r| r.0 != "pending").await;
    assert_eq!(sink.wait_for(1).len(), 1);
    let id = db.enqueue(queued_voicemail(&wav)).await;
    let queued_at = Instant::now();
    worker.wake_handle().notify_one();

    let received = sink.wait_for(2);
    assert!(queued_at.elapsed() < mail::outbox::MAX_SLEEP / 2, "the wake was not heard: {:?}", queued_at.elapsed());
    let m = &received[1];
    assert_eq!(m.rcpt_tos, ["alice@sambung.test"]);
    assert_eq!(m.subject, "New voicemail from Zoë (1002)");
    assert_eq!(text_of(m), "Zoë left you a message of 1 s.");
    assert_eq!(m.attachments[0].filename.as_deref(), Some("voicemail.wav"));
    assert!(m.attachments[0].data == wav, "the attachment decodes to other bytes than were queued");
    let message_id = m.message_id.as_deref().expect("Message-ID");
    assert!(
        message_id.starts_with("<sambung.") && message_id.ends_with(&format!(".{id}@sambung.test>")),
        "{message_id}"
    );

    let (state, attempts, _) = db.wait_row(id, ARRIVAL, "recorded as sent", |r| r.0 != "pending").await;
    assert_eq!((state.as_str(), attempts), ("sent", 0));
    assert_eq!(db.store.next_mail_due().await.expect("next due"), None);
    worker.stop().await;
    assert_eq!(sink.received().len(), 2, "each mail sent once");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_retries_until_the_server_is_up() {
    // Start (and stop) a sink once first, so that its venv exists and the later start is quick.
    drop(Sink::start("worker-retry-warmup", 0, &[]));
    let port = free_port();
    let db = TestStore::new("worker-retry").await;
    let config = EmailConfig { retry_seconds: 1, max_attempts: 12, ..config(port, SmtpTls::None) };
    let wav = wav_file();
    let id = db.enqueue(queued_voicemail(&wav)).await;
    let worker = mail::spawn(db.store.clone(), config);

    // Nobody listens: the attempt fails and the mail stays queued for a retry.
    let (state, attempts, error) = db.wait_row(id, ARRIVAL, "tried", |r| r.1 >= 1).await;
    assert_eq!(state, "pending");
    assert!(attempts >= 1);
    assert!(error.as_deref().is_some_and(|e| !e.is_empty()), "the failure is kept: {error:?}");
    assert!(db.store.next_mail_due().await.expect("next due").is_some(), "a retry is scheduled");

    let sink = Sink::start("worker-retry", port, &[]);
    // The back-off doubles from 1 s: the next retry comes within about twice the time waited so far.
    let (state, attempts, _) = db.wait_row(id, Duration::from_secs(120), "sent", |r| r.0 != "pending").await;
    assert_eq!(state, "sent");
    let received = sink.wait_for(1);
    assert!(received[0].attachments[0].data == wav);
    assert!(attempts >= 1, "the failed attempts stay counted: {attempts}");
    worker.stop().await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_waits_retry_seconds_after_a_failure() {
    let port = free_port();
    let db = TestStore::new("worker-backoff").await;
    let config = EmailConfig { retry_seconds: 600, max_attempts: 3, ..config(port, SmtpTls::None) };
    let before = unix_now();
    let id = db.enqueue(queued_voicemail(b"RIFF")).await;
    let worker = mail::spawn(db.store.clone(), config);
    db.wait_row(id, ARRIVAL, "tried", |r| r.1 >= 1).await;
    let after = unix_now();
    let next = db.store.next_mail_due().await.expect("next due").expect("a retry is scheduled");
    assert!((before + 600..=after + 600).contains(&next), "retry at {next}, failed between {before} and {after}");
    // Not before then: the worker wakes for nothing but due mail. A second mail, due now, and a
    // wake: once that mail's attempt is recorded the worker has made a whole pass over what was
    // due (in the order queued, the first mail before it), so the first mail's count is final.
    let probe = db.enqueue(queued_voicemail(b"RIFF")).await;
    worker.wake();
    db.wait_row(probe, ARRIVAL, "tried after the wake", |r| r.1 >= 1).await;
    assert_eq!(db.row(id).await.1, 1, "retried before its time");
    worker.stop().await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_gives_up_after_max_attempts() {
    let port = free_port();
    let db = TestStore::new("worker-give-up").await;
    let config = EmailConfig { retry_seconds: 1, max_attempts: 2, ..config(port, SmtpTls::None) };
    let id = db.enqueue(queued_voicemail(b"RIFF")).await;
    let worker = mail::spawn(db.store.clone(), config);
    let (state, attempts, _) = db.wait_row(id, ARRIVAL, "given up", |r| r.0 != "pending").await;
    assert_eq!((state.as_str(), attempts), ("failed", 2));
    assert_eq!(db.store.next_mail_due().await.expect("next due"), None);
    worker.stop().await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_gives_up_at_once_on_a_permanent_refusal() {
    // The server wants AUTH and the worker has no credentials: 530, a permanent refusal.
    let sink = Sink::start("worker-refused", 0, &["--auth", "vm:pw"]);
    let db = TestStore::new("worker-refused").await;
    let config = EmailConfig { retry_seconds: 1, max_attempts: 5, ..config(sink.port, SmtpTls::None) };
    let id = db.enqueue(queued_voicemail(b"RIFF")).await;
    let worker = mail::spawn(db.store.clone(), config);
    let (state, attempts, error) = db.wait_row(id, ARRIVAL, "given up", |r| r.0 != "pending").await;
    assert_eq!((state.as_str(), attempts), ("failed", 1), "{error:?}");
    assert!(error.as_deref().is_some_and(|e| e.contains("530")), "{error:?}");
    worker.stop().await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_with_starttls_and_auth_sends() {
    let certs = scratch_dir("worker-starttls-certs");
    let (ca_pem, cert, key) = test_ca(&certs);
    let (cert, key) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let sink = Sink::start("worker-starttls", 0, &["--starttls", cert, key, "--require-starttls", "--auth", "vm:pw"]);
    let db = TestStore::new("worker-starttls").await;
    let config = EmailConfig {
        username: Some("vm".into()),
        password: Some("pw".into()),
        ..config(sink.port, SmtpTls::Starttls)
    };
    let wav = wav_file();
    let id = db.enqueue(queued_voicemail(&wav)).await;
    let worker = mail::spawn_with_ca(db.store.clone(), config, Some(ca_pem.into_bytes()));
    let received = sink.wait_for(1);
    assert!(received[0].tls && received[0].auth_user.as_deref() == Some("vm"));
    assert!(received[0].attachments[0].data == wav);
    db.wait_row(id, ARRIVAL, "recorded as sent", |r| r.0 == "sent").await;
    worker.stop().await;
    db.close().await;
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_without_a_server_keeps_mail_queued() {
    logs();
    let db = TestStore::new("worker-unset").await;
    let config = EmailConfig { server: None, ..config(free_port(), SmtpTls::None) };
    let id = db.enqueue(queued_voicemail(b"RIFF")).await;
    let worker = mail::spawn(db.store.clone(), config);
    // The worker says once that it will send nothing (no other test here runs one without a
    // server); then a wake, and the stop, which returns once the worker has ended: whatever it
    // did is done, so the row is final.
    wait_logged("[email] server is unset", Duration::from_secs(10)).await;
    worker.wake();
    worker.stop().await;
    assert_eq!(db.row(id).await, ("pending".to_owned(), 0, None));
    assert_eq!(db.store.due_mail(unix_now(), 10).await.expect("due").len(), 1);
    db.close().await;
}
