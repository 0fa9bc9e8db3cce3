//! Packet captures of the relay's ports on loopback (tcpdump; scripts/test.sh installs it and
//! the tests run as root or with CAP_NET_RAW), read back without a pcap library.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clients::{poll_until, require_tool};

/// tcpdump writing every UDP packet to and from the relay's ports on loopback into a file;
/// stopped (and the file flushed) by [`Capture::finish`].
pub struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Capture {
    pub fn start(dir: &Path, ports: (u16, u16)) -> Capture {
        require_tool("tcpdump", "tcpdump");
        let file = dir.join("relay.pcap");
        let filter = format!("udp portrange {}-{}", ports.0, ports.1);
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-s", "0", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        // tcpdump says "listening on lo" on standard error once the capture runs.
        let said = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("tcpdump's stderr");
        let sink = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut capture = Capture { child: Some(child), file };
        let listening = poll_until(Duration::from_secs(20), || {
            said.lock().unwrap().contains("listening on lo") || capture.exited()
        });
        assert!(
            listening && !capture.exited(),
            "tcpdump did not start capturing on lo within 20 s (it needs root or CAP_NET_RAW): {}",
            said.lock().unwrap()
        );
        capture
    }

    fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Stops the capture; returns each UDP datagram's (source port, destination port, payload).
    pub fn finish(mut self) -> Vec<(u16, u16, Vec<u8>)> {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
        read_pcap(&self.file)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The UDP datagrams over IPv4 in a classic pcap file (Ethernet link type, as on `lo`).
pub fn read_pcap(path: &Path) -> Vec<(u16, u16, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(bytes.len() >= 24, "{} is not a pcap file", path.display());
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    assert!(magic == 0xa1b2c3d4 || magic == 0xa1b23c4d, "unexpected pcap magic {magic:#x}");
    let link = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(link, 1, "expected an Ethernet capture of lo");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let captured = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..(at + 16 + captured).min(bytes.len())];
        at += 16 + captured;
        if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let header = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 17 || ip.len() < header + 8 {
            continue;
        }
        let udp = &ip[header..];
        let (source, destination) = (u16::from_be_bytes([udp[0], udp[1]]), u16::from_be_bytes([udp[2], udp[3]]));
        out.push((source, destination, udp[8..].to_vec()));
    }
    out
}
