//! Interoperability with an independent SRTP implementation: libre's (the library under
//! baresip, which scripts/test.sh installs), driven through python3's ctypes since this crate
//! forbids `unsafe` FFI. Packets cross both ways over a sequence-number rollover.
//!
//! Without python3 or libre the test is skipped, except under CI, where it must run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::{MasterKey, SrtpContext, SrtpProfile};

/// Reads `<OP> <hex>` lines: ENC/DEC run libre's SRTP protect/unprotect, ENCC/DECC its SRTCP
/// ones; answers with the hex result or `ERR <code>`. Protects with the second key, unprotects
/// with the first.
const LIBRE_PEER: &str = r#"
import ctypes, sys
try:
    re = ctypes.CDLL("libre.so.0")
except OSError:
    print("NOLIBRE", flush=True)
    sys.exit(0)
class Mbuf(ctypes.Structure):
    _fields_ = [("buf", ctypes.POINTER(ctypes.c_uint8)), ("size", ctypes.c_size_t),
                ("pos", ctypes.c_size_t), ("end", ctypes.c_size_t)]
re.mbuf_alloc.restype = ctypes.POINTER(Mbuf)
re.srtp_suite_name.restype = ctypes.c_char_p
re.libre_init()
suites = {(re.srtp_suite_name(i) or b"").decode(): i for i in range(4)}
suite, key_in, key_out = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
def context(key):
    srtp = ctypes.c_void_p()
    assert re.srtp_alloc(ctypes.byref(srtp), suites[suite], key, len(key), 0) == 0
    return srtp
inbound, outbound = context(key_in), context(key_out)
ops = {"ENC": (re.srtp_encrypt, outbound), "DEC": (re.srtp_decrypt, inbound),
       "ENCC": (re.srtcp_encrypt, outbound), "DECC": (re.srtcp_decrypt, inbound)}
print("READY", flush=True)
for line in sys.stdin:
    op, data = line.split()
    data = bytes.fromhex(data)
    mb = re.mbuf_alloc(len(data) + 64)
    re.mbuf_write_mem(mb, data, len(data))
    mb.contents.pos = 0
    function, srtp = ops[op]
    rc = function(srtp, mb)
    print(f"ERR {rc}" if rc else bytes(mb.contents.buf[mb.contents.pos:mb.contents.end]).hex(), flush=True)
    re.mem_deref(mb)
"#;

struct Libre {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Libre {
    /// libre with `inbound` for what it receives and `outbound` for what it sends; `None`
    /// when python3 or libre is not installed.
    fn start(profile: SrtpProfile, inbound: &MasterKey, outbound: &MasterKey) -> Option<Libre> {
        let mut child = Command::new("python3")
            .args(["-c", LIBRE_PEER, profile.name(), &hex(&inbound.to_bytes()), &hex(&outbound.to_bytes())])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        (line.trim() == "READY").then_some(Libre { child, stdin, stdout })
    }

    /// libre's result, or `None` when it refused the packet.
    fn call(&mut self, op: &str, packet: &[u8]) -> Option<Vec<u8>> {
        writeln!(self.stdin, "{op} {}", hex(packet)).unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let line = line.trim();
        assert!(!line.is_empty(), "libre peer died");
        (!line.starts_with("ERR")).then(|| unhex(line))
    }
}

impl Drop for Libre {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// A deterministic RTP packet: every fifth one with a header extension, payload sizes varied.
fn rtp(i: u32, seq: u16) -> Vec<u8> {
    let extension = i.is_multiple_of(5);
    let mut packet = vec![if extension { 0x90 } else { 0x80 }, 0x00];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(i * 160).to_be_bytes());
    packet.extend_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    if extension {
        packet.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0x55, 0, 0]);
    }
    let len = [160, 20, 33, 320][i as usize % 4];
    packet.extend((0..len).map(|k| (i as usize * 7 + k) as u8));
    packet
}

fn rtcp() -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    packet.extend_from_slice(&[0x81, 202, 0, 2]);
    packet.extend_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    packet.extend_from_slice(&[1, 2, b'a', b'b']);
    packet
}

#[test]
fn interoperates_with_libre_across_a_rollover() {
    let ours = MasterKey::from_bytes(&std::array::from_fn(|i| i as u8 ^ 0x5C));
    let theirs = MasterKey::from_bytes(&std::array::from_fn(|i| i as u8 ^ 0xA3));
    for profile in SrtpProfile::ALL {
        let Some(mut libre) = Libre::start(profile, &ours, &theirs) else {
            assert!(std::env::var_os("CI").is_none(), "CI has python3 and libre (baresip): scripts/test.sh");
            eprintln!("skipped: python3 with libre.so.0 (baresip) not installed");
            return;
        };
        let mut outbound = SrtpContext::new(profile, &ours);
        let mut inbound = SrtpContext::new(profile, &theirs);
        let mut seq = 64_000u16;
        for i in 0..2_500u32 {
            let plain = rtp(i, seq);
            let mut packet = libre.call("ENC", &plain).expect("libre protects");
            inbound.unprotect_rtp(&mut packet).unwrap_or_else(|e| panic!("{profile} seq {seq}: {e}"));
            assert_eq!(packet, plain);

            let mut packet = plain.clone();
            outbound.protect_rtp(&mut packet).unwrap();
            assert_eq!(libre.call("DEC", &packet), Some(plain), "{profile} seq {seq}");

            if i.is_multiple_of(100) {
                let mut packet = libre.call("ENCC", &rtcp()).expect("libre protects RTCP");
                inbound.unprotect_rtcp(&mut packet).unwrap_or_else(|e| panic!("{profile} SRTCP: {e}"));
                assert_eq!(packet, rtcp());
                // libre expects a 32-bit SRTCP tag under the 32-bit suite, where RFC 4568 §6.2
                // has 80 bits: only the 80-bit suite can be checked in this direction.
                if profile == SrtpProfile::Aes128CmSha1_80 {
                    let mut packet = rtcp();
                    outbound.protect_rtcp(&mut packet).unwrap();
                    assert_eq!(libre.call("DECC", &packet), Some(rtcp()));
                }
            }
            seq = seq.wrapping_add(1);
        }
    }
}
