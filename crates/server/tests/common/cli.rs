//! The `sambung` command line run as the built binary against a temporary configuration and
//! database (`sambung user ...`, `sambung settings ...`, `sambung voicemail ...`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A temporary directory with `sambung.toml` whose data_dir is `<dir>/data`; removed on drop.
pub struct CliSetup {
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Put before every command's arguments (`user` for the `sambung user` tests).
    command: Option<&'static str>,
}

impl CliSetup {
    /// A fresh setup named after `tag`; `command` prefixes the arguments of every run.
    pub fn new(tag: &str, command: Option<&'static str>) -> CliSetup {
        let dir = super::temp_dir(tag);
        let config = dir.join("sambung.toml");
        let data = dir.join("data");
        std::fs::write(&config, format!("domains = [\"cli.example\"]\ndata_dir = {:?}\n", data.display().to_string()))
            .unwrap();
        CliSetup { dir, config, command }
    }

    /// The SQLite file of the setup's database.
    pub fn db(&self) -> PathBuf {
        self.dir.join("data").join("sambung.db")
    }

    /// The database URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.db().display())
    }

    /// Runs `sambung [COMMAND] ARGS --config FILE` with `stdin` as standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sambung"))
            .args(self.command)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("SAMBUNG_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sambung");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// Runs and expects success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects exit code `code` with exactly `message` on standard error.
    pub fn fails(&self, args: &[&str], code: i32, message: &str) {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("error: {message}\n"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }

    /// Runs and expects a usage error from the argument parser (exit code 2) whose text
    /// contains `part`.
    pub fn usage_error(&self, args: &[&str], part: &str) {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: ") && err.contains(part), "{args:?}: {err}");
    }
}

impl Drop for CliSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
