//! A real SMTP server for tests: `tests/tools/smtp-sink` (aiosmtpd from PyPI) on 127.0.0.1,
//! which keeps each message with its attachments decoded by Python's email package.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long the sink may take to start: its first run installs aiosmtpd.
pub const SINK_START: Duration = Duration::from_secs(240);
/// How long a sent message may take to show up in the sink's directory.
pub const ARRIVAL: Duration = Duration::from_secs(60);

/// A running `smtp-sink`; stopped when dropped.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sink {
    /// Starts the sink on `port` (0: any free port) with extra options, keeping messages in a
    /// fresh directory named after `name`.
    pub fn start(name: &str, port: u16, options: &[&str]) -> Sink {
        let dir = scratch_dir(&format!("{name}-mail-{port}"));
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/smtp-sink");
        let mut child = Command::new("bash")
            .arg(&tool)
            .arg("--dir")
            .arg(&dir)
            .args(["--port", &port.to_string()])
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run tests/tools/smtp-sink (needs bash, python3 and python3-venv)");
        let stdout = child.stdout.take().expect("sink stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(SINK_START) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("smtp-sink did not start within {SINK_START:?}");
            }
        };
        let Some(port) = line.trim().strip_prefix("listening 127.0.0.1:").and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            panic!("smtp-sink failed to start (it printed {line:?}; its errors are above)");
        };
        Sink { child, port, dir }
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for n in 1.. {
            let path = self.dir.join(format!("{n}.json"));
            let Ok(text) = std::fs::read_to_string(&path) else { break };
            let mut received: Received = serde_json::from_str(&text).expect("sink summary is JSON");
            for a in &mut received.attachments {
                a.data = std::fs::read(self.dir.join(&a.file)).expect("attachment file");
            }
            received.raw = std::fs::read(self.dir.join(format!("{n}.eml"))).expect("eml file");
            out.push(received);
        }
        out
    }

    /// Polls until `count` messages have arrived (panics after [`ARRIVAL`]).
    pub fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + ARRIVAL;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(Instant::now() < deadline, "{} of {count} messages arrived within {ARRIVAL:?}", received.len());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the sink wrote about one message.
#[derive(Debug, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub tls: bool,
    pub auth_user: Option<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub content_type: String,
    pub text: Option<String>,
    pub attachments: Vec<ReceivedAttachment>,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

#[derive(Debug, Deserialize)]
pub struct ReceivedAttachment {
    pub file: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub transfer_encoding: Option<String>,
    #[serde(skip)]
    pub data: Vec<u8>,
}

pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sambung-email-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
