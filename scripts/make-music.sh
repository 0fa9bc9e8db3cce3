#!/usr/bin/env bash
# Makes the built-in music on hold: crates/server/music/hold.wav, 8 kHz mono 16-bit PCM (the
# format crates/server/src/media/music.rs plays), built into the binary.
#
# A slow plucked arpeggio over a held pad, four bars in C major (C, A minor, F, G), 8 s in all,
# peak-normalised to -6 dBFS, so that a held caller hears that the line is alive. sox's pluck
# and sine synths run in repeatable mode (-R): with sox at the same version every run gives the same bytes,
# so the file is committed and this script rerun only to change the music:
#   sudo apt-get install -y sox && scripts/make-music.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sox >/dev/null || { echo "make-music: sox is missing (sudo apt-get install -y sox)" >&2; exit 1; }

OUT=crates/server/music/hold.wav
work=$(mktemp -d /tmp/sambung-music.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Semitones from A4 (440 Hz) of each chord's four arpeggio notes, and its pad's root.
CHORDS=(
  "-9 -5 -2 3|-21"   # C  : C4 E4 G4 C5 over C3
  "-12 -9 -5 0|-24"  # Am : A3 C4 E4 A4 over A2
  "-16 -12 -9 -4|-28" # F : F3 A3 C4 F4 over F2
  "-14 -10 -7 -2|-26" # G : G3 B3 D4 G4 over G2
)
bars=()
for i in "${!CHORDS[@]}"; do
  IFS='|' read -r notes root <<<"${CHORDS[$i]}"
  plucks=()
  j=0
  for n in $notes; do
    f="$work/bar$i-$j.wav"
    sox -R -n -r 8000 -c 1 -b 16 "$f" synth 0.5 pluck "%$n" fade 0 0.5 0.2 vol 0.6
    plucks+=("$f")
    j=$((j + 1))
  done
  sox -R "${plucks[@]}" "$work/arp$i.wav"
  sox -R -n -r 8000 -c 1 -b 16 "$work/pad$i.wav" synth 2 sine "%$root" fade 0.2 2 0.3 vol 0.25
  sox -R -m "$work/arp$i.wav" "$work/pad$i.wav" "$work/mix$i.wav"
  bars+=("$work/mix$i.wav")
done
sox -R "${bars[@]}" -r 8000 -c 1 -b 16 "$OUT" norm -6
echo "made $OUT: $(soxi -D "$OUT") s"
