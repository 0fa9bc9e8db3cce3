//! Linphone's console client (`linphonec`, Debian's linphone-cli) as a real phone: it does
//! what baresip 1.0 cannot, attended transfer (`transfer ID --to-call ID`, a REFER with
//! Replaces) and the INVITE with Replaces that a REFER naming one asks for. It has no sound card
//! here: it reads and writes WAV files instead (`soundcard use files`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clients::{User, poll_until, require_tool};
use super::{Server, free_port};

/// A running linphonec registered (or registering) to a test server; killed on drop.
pub struct Linphone {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// What it printed on its console.
    out: Arc<Mutex<String>>,
    /// Its own log (`-l`, level 5): SIP messages among it.
    pub log_file: PathBuf,
    pub sip_port: u16,
}

impl Linphone {
    /// Starts linphonec in `dir` as `user` of `server` (UDP, 127.0.0.1), with its SIP port and
    /// its RTP ports of its own.
    pub fn start(dir: &Path, user: &User<'_>, server: &Server) -> Linphone {
        require_tool("linphonec", "linphone-cli");
        std::fs::create_dir_all(dir).unwrap();
        let (sip_port, audio, video) = (free_port(), free_port(), free_port());
        let config = dir.join("linphonerc");
        // Its database and files go under HOME: the test's own directory.
        std::fs::write(
            &config,
            format!(
                "[sip]\nsip_port={sip_port}\nsip_tcp_port=-1\nsip_tls_port=-1\ndefault_proxy=0\n\
                 register_only_when_network_is_up=0\nguess_hostname=0\ncontact=sip:{name}@127.0.0.1:{sip_port}\n\
                 [rtp]\naudio_rtp_port={audio}\nvideo_rtp_port={video}\n\
                 [sound]\necho_cancellation=0\n\
                 [proxy_0]\nreg_proxy=<sip:127.0.0.1:{udp};transport=udp>\nreg_identity=\"{name}\" <sip:{name}@127.0.0.1>\n\
                 reg_expires=300\nreg_sendregister=1\npublish=0\n\
                 [auth_info_0]\nusername={name}\npasswd={password}\n",
                name = user.name,
                password = user.password,
                udp = server.ports.udp,
            ),
        )
        .unwrap();
        let log_file = dir.join("linphonec.log");
        let mut child = Command::new("stdbuf")
            .args(["-oL", "-eL", "linphonec", "-c"])
            .arg(&config)
            .args(["-d", "5", "-l"])
            .arg(&log_file)
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start linphonec");
        let out = Arc::new(Mutex::new(String::new()));
        super::clients::collect(child.stdout.take().unwrap(), out.clone());
        super::clients::collect(child.stderr.take().unwrap(), out.clone());
        let stdin = child.stdin.take();
        let mut phone = Linphone { child: Some(child), stdin, out, log_file, sip_port };
        // No sound card: WAV files. Its configured SIP port is not taken up at start (its
        // transports stay closed until set again), so it is set here.
        phone.command("soundcard use files");
        phone.command(&format!("ports sip {sip_port}"));
        phone
    }

    /// Types a command at its console.
    pub fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("linphonec's stdin");
        stdin
            .write_all(command.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush())
            .expect("write to linphonec");
    }

    /// What it printed on its console so far.
    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Its own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Waits until its console output satisfies `done`.
    pub fn wait_for(&self, limit: Duration, done: impl Fn(&str) -> bool) -> bool {
        poll_until(limit, || done(&self.out.lock().unwrap()))
    }

    /// Asks for its registration state until it says it is registered.
    pub fn wait_registered(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            self.command("status register");
            if self.wait_for(Duration::from_millis(500), |out| out.contains("registered, identity")) {
                return true;
            }
        }
        false
    }

    /// Quits (and kills it if it does not).
    pub fn stop(&mut self) {
        if self.stdin.is_some() {
            self.command("quit");
        }
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = poll_until(Duration::from_secs(3), || child.try_wait().ok().flatten().is_some());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        self.stop();
    }
}
