//! Speech quality through the engine's transcoding, measured with ITU-T P.862 (PESQ,
//! ../shared/tools/pesq-score, wideband mode): espeak-ng speech is encoded with Opus (in-band
//! FEC on), sent over a path that loses 5% of the packets at random and delays each by 0 to
//! 40 ms (so packets also arrive out of order), transcoded to G.711 mu-law by one
//! [`Transcoder`] and back to Opus by a second, then decoded and scored against the original.
//!
//! G.711 carries only 300-3400 Hz (8 kHz sampling), and wideband PESQ scores the missing upper
//! band: the same speech through G.711 alone, with no loss at all, is measured in the same run
//! as the ceiling any Opus -> G.711 -> Opus path can reach. The test requires the impaired
//! path to stay close to that ceiling.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sambung_media::codec::{self, CodecKind, EncoderParams};
use sambung_media::negotiate::{EventFormat, Negotiated, PayloadFormat};
use sambung_media::resample::Resampler;
use sambung_media::rtp::{RtpHeader, RtpPacket};
use sambung_media::transcode::{FRAME, Transcoder};

const SPEECH: &str = "The quick brown fox jumps over the lazy dog. \
    Sambung carries this sentence through Opus, then G seven eleven, then Opus again.";
const LOSS: f64 = 0.05;
const JITTER_MS: u64 = 40;
/// The impaired path may score at most this much below the loss-free G.711 ceiling.
const MAX_BELOW_CEILING: f64 = 0.35;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sambung-transcode-quality-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_mono(path: &Path) -> (Vec<i16>, u32) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.bits_per_sample), (1, 16), "{} must be 16-bit mono", path.display());
    (reader.samples::<i16>().map(Result::unwrap).collect(), spec.sample_rate)
}

fn write_mono(path: &Path, samples: &[i16], rate: u32) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
}

fn pesq(reference: &Path, degraded: &Path) -> f64 {
    let out = Command::new(shared().join("tools/pesq-score")).arg(reference).arg(degraded).arg("wb").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pesq-score failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no score in {text:?}"))
}

fn format(codec: CodecKind, payload_type: u8) -> Negotiated {
    let fmtp = (codec == CodecKind::Opus).then(|| "useinbandfec=1".to_owned());
    Negotiated {
        audio: PayloadFormat { codec, payload_type, fmtp },
        telephone_event: Some(EventFormat { payload_type: 101, clock_rate: 8000 }),
    }
}

/// One packet on its way: when it arrives and its bytes.
struct InFlight {
    arrival: Duration,
    bytes: Vec<u8>,
}

#[test]
// The test plays the network's clock: any starting instant will do, and the media crate's rule
// against reading the clock is for the engine, not for this driver.
#[allow(clippy::disallowed_methods)]
fn opus_g711_opus_with_loss_and_jitter_stays_near_the_g711_ceiling() {
    let dir = temp_dir();
    let raw = dir.join("espeak.wav");
    run(Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&raw).arg(SPEECH));
    let reference = dir.join("reference16k.wav");
    run(Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&reference)
        .args(["pad", "0.5", "0.5"]));
    let source48 = dir.join("source48k.wav");
    run(Command::new("sox").arg(&reference).args(["-r", "48000"]).arg(&source48));
    // The ceiling: the same speech through G.711 alone, nothing lost.
    let g711 = dir.join("g711.wav");
    run(Command::new("sox").arg(&reference).args(["-r", "8000", "-e", "u-law"]).arg(&g711));
    let ceiling_wav = dir.join("ceiling16k.wav");
    run(Command::new("sox").arg(&g711).args(["-r", "16000", "-e", "signed-integer", "-b", "16"]).arg(&ceiling_wav));

    let (speech, rate) = read_mono(&source48);
    assert_eq!(rate, 48_000);

    // The Opus phone's encoder, as a device would run it: FEC on for 5% loss.
    let params = EncoderParams { fec: true, packet_loss_percent: 5, ..EncoderParams::default() };
    let mut phone = codec::encoder(CodecKind::Opus, &params).unwrap();
    let frame = CodecKind::Opus.frame_samples(20);
    let mut rng = StdRng::seed_from_u64(0x5A4B_0004);
    let mut path: Vec<InFlight> = Vec::new();
    let mut lost = 0;
    for (n, chunk) in speech.chunks(frame).enumerate() {
        let mut pcm = chunk.to_vec();
        pcm.resize(frame, 0);
        let mut payload = Vec::new();
        phone.encode(&pcm, &mut payload).unwrap();
        let header = RtpHeader {
            payload_type: 96,
            sequence: 1000u16.wrapping_add(n as u16),
            timestamp: 960 * n as u32,
            ssrc: 0x1234,
            marker: n == 0,
            ..RtpHeader::default()
        };
        let mut bytes = vec![0; header.header_len() + payload.len()];
        header.write(&payload, &mut bytes).unwrap();
        if rng.random_bool(LOSS) {
            lost += 1;
            continue;
        }
        let sent = FRAME * n as u32;
        path.push(InFlight { arrival: sent + Duration::from_millis(rng.random_range(0..=JITTER_MS)), bytes });
    }
    path.sort_by_key(|p| p.arrival);
    let reordered = path.windows(2).filter(|w| {
        let seq = |b: &[u8]| RtpPacket::parse(b).unwrap().sequence();
        seq(&w[1].bytes) < seq(&w[0].bytes)
    });
    println!("{} packets sent, {lost} lost, {} arriving out of order", speech.len() / frame, reordered.count());

    // Opus -> G.711 by the first transcoder, G.711 -> Opus by the second.
    let (opus, pcmu) = (format(CodecKind::Opus, 96), format(CodecKind::Pcmu, 0));
    let mut to_g711 = Transcoder::new([&opus, &pcmu], [1, 2], 11).unwrap();
    let mut to_opus = Transcoder::new([&pcmu, &opus], [3, 4], 13).unwrap();
    let mut receiver = codec::decoder(CodecKind::Opus).unwrap();
    let mut heard = Vec::new();
    let start = Instant::now();
    let mut next = 0;
    let ticks = speech.len() / frame + 20;
    for tick in 0..ticks {
        let now_offset = FRAME * tick as u32;
        while next < path.len() && path[next].arrival <= now_offset {
            let at = start + path[next].arrival;
            to_g711.push(at, 0, &RtpPacket::parse(&path[next].bytes).unwrap());
            next += 1;
        }
        let now = start + now_offset;
        let mut g711_packets = Vec::new();
        to_g711.poll(now, &mut |to, packet| {
            assert_eq!(to, 1);
            g711_packets.push(packet.clone());
        });
        for packet in &g711_packets {
            to_opus.push(now, 0, &RtpPacket::parse(packet).unwrap());
        }
        to_opus.poll(now, &mut |to, packet| {
            assert_eq!(to, 1);
            let packet = RtpPacket::parse(packet).unwrap();
            assert_eq!(packet.payload_type(), 96);
            receiver.decode(packet.payload(), &mut heard).unwrap();
        });
    }
    let stats = to_g711.stats(0);
    println!("Opus -> G.711: {stats:?}");
    assert!(stats.recovered + stats.concealed >= lost / 2, "losses must be recovered or concealed: {stats:?}");

    let mut down = Resampler::new(48_000, 16_000).unwrap();
    let mut heard16 = Vec::new();
    down.process(&heard, &mut heard16);
    let degraded = dir.join("degraded16k.wav");
    write_mono(&degraded, &heard16, 16_000);

    let ceiling = pesq(&reference, &ceiling_wav);
    let score = pesq(&reference, &degraded);
    println!(
        "PESQ (wb): Opus -> G.711 -> Opus with {:.0}% loss and {JITTER_MS} ms jitter: {score:.2}; \
         G.711 alone, nothing lost (ceiling): {ceiling:.2}",
        LOSS * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        score >= ceiling - MAX_BELOW_CEILING,
        "PESQ {score:.2} is more than {MAX_BELOW_CEILING} below the G.711 ceiling {ceiling:.2}"
    );
}
