//! The binary's life: command line, first start, restart, shutdown on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, options, read_message, response, temp_dir};

fn sambung(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sambung")).args(args).output().expect("run sambung")
}

#[test]
fn help_explains_the_subcommands() {
    let out = sambung(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in ["serve", "config", "Run the server"] {
        assert!(help.contains(word), "--help lacks {word:?}:\n{help}");
    }
    let out = sambung(&["serve", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--config") && help.contains("--log-level"), "{help}");
}

#[test]
fn printed_default_config_is_valid() {
    let out = sambung(&["config", "print-default"]);
    assert!(out.status.success());
    let dir = temp_dir("config");
    let path = dir.join("default.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let check = sambung(&["config", "check", path.to_str().unwrap()]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    std::fs::write(&path, "[limits]\nmax_conections = 1\n").unwrap();
    let check = sambung(&["config", "check", path.to_str().unwrap()]);
    assert!(!check.status.success(), "a misspelt key must be refused");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_closes_connections_and_exits_zero() {
    let mut server = Server::start("");
    let mut stream = TcpStream::connect(server.tcp_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = stream.local_addr().unwrap();
    stream.write_all(&options(server.tcp_addr(), "TCP", local, "before-term")).unwrap();
    let mut buf = Vec::new();
    let answer = read_message(&mut stream, &mut buf, Duration::from_secs(5)).expect("answer");
    assert_eq!(response(&answer).status, 200);

    let start = Instant::now();
    let status = server.terminate(Duration::from_secs(10)).expect("exited within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}; log:\n{}", server.log());
    assert!(start.elapsed() < Duration::from_secs(3), "shutdown took {:?}", start.elapsed());
    // The open connection was closed by the server.
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)));
}

#[test]
fn first_start_creates_data_and_restart_reuses_it() {
    let dir = temp_dir("restart");
    let mut first = Server::start_in(dir.clone(), "");
    let cert = std::fs::read(first.certificate()).expect("certificate generated on first start");
    let secret = std::fs::read(dir.join("data/secret")).expect("secret made on first start");
    let status = first.terminate(Duration::from_secs(10)).expect("stopped");
    assert!(status.success(), "exit status {status}; log:\n{}", first.log());
    drop(first);
    let second = Server::start_in(dir.clone(), "");
    assert_eq!(std::fs::read(second.certificate()).unwrap(), cert, "certificate regenerated");
    assert_eq!(std::fs::read(dir.join("data/secret")).unwrap(), secret, "secret regenerated");
    drop(second);
    std::fs::remove_dir_all(dir).unwrap();
}
