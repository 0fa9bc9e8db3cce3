#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/): the SIP targets, `sdp` and `sip_headers` from
# the RFC 4475 torture messages in shared/ (the .dat files are only read, never changed), the
# media and WebSocket targets from examples/seed_corpora.rs (packets made by sambung-media's own
# writers, SDP and a=crypto like the tests', masked WebSocket frames). Seeds are named `seed-*`;
# the committed corpora are what fuzzing and `cargo fuzz cmin` made of them.
#   fuzz/seed.sh [TORTURE_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-$here/../../shared/sip/torture/rfc4475}"
[ -d "$src" ] || src=/work/shared/sip/torture/rfc4475
[ -d "$src" ] || { echo "no torture directory: $src" >&2; exit 1; }

corpus="$here/corpus"
mkdir -p "$corpus/parse_message" "$corpus/frame_stream" "$corpus/uri" "$corpus/digest_credentials" \
    "$corpus/sdp" "$corpus/sip_headers"

n=0
for f in "$src"/*.dat; do
    name="$(basename "$f" .dat)"
    # Whole messages for the message parser and the stream framer.
    cp -f -- "$f" "$corpus/parse_message/$name"
    cp -f -- "$f" "$corpus/frame_stream/$name"
    # Request-URI of the start line, and every <...> URI in the header section.
    LC_ALL=C awk 'NR == 1 && $1 !~ /^SIP\// { print $2 }' "$f" > "$corpus/uri/$name-ruri"
    LC_ALL=C grep -ao '<[^<>]*>' "$f" | LC_ALL=C sed 's/^<//; s/>$//' | head -n 40 \
        | { i=0; while IFS= read -r u; do printf '%s' "$u" > "$corpus/uri/$name-$i"; i=$((i + 1)); done; } || true
    # Authorization / Proxy-Authorization values (there are few; digest has its own seeds below).
    LC_ALL=C grep -aiE '^(proxy-)?authorization[ \t]*:' "$f" | LC_ALL=C sed -E 's/^[^:]*:[ \t]*//; s/\r$//' \
        | { i=0; while IFS= read -r v; do printf '%s' "$v" > "$corpus/digest_credentials/$name-$i"; i=$((i + 1)); done; } || true
    # SDP bodies: everything after the blank line of a message that says it carries SDP.
    if LC_ALL=C grep -aqi '^content-type:[ \t]*application/sdp' "$f"; then
        LC_ALL=C awk 'body { print } /^\r?$/ { body = 1 }' "$f" > "$corpus/sdp/$name"
    fi
    # Via, From/To/Contact and CSeq values for the typed header parsers.
    LC_ALL=C grep -aiE '^(via|v|from|f|to|t|contact|m|cseq)[ \t]*:' "$f" | LC_ALL=C sed -E 's/^[^:]*:[ \t]*//; s/\r$//' \
        | head -n 20 | { i=0; while IFS= read -r v; do printf '%s' "$v" > "$corpus/sip_headers/$name-$i"; i=$((i + 1)); done; } || true
    n=$((n + 1))
done

# A few hand-written seeds for what the torture set lacks.
printf '%s' 'sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr;maddr=192.0.2.1?subject=hi%20there&priority=urgent' > "$corpus/uri/seed-sips"
printf '%s' 'tel:+1-201-555-0123;phone-context=example.com' > "$corpus/uri/seed-tel"
printf '%s' 'sip:%61lice@example.com:5060;user=phone' > "$corpus/uri/seed-escaped"
printf '%s' 'Digest username="alice", realm="sambung.example", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:sambung.example", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001' > "$corpus/digest_credentials/seed-md5-qop"
printf '%s' 'Digest username="bob", realm="b.example", nonce="n", uri="sip:b.example", response="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", algorithm=SHA-256-sess, cnonce="c\"q", qop="auth", nc=0000000a' > "$corpus/digest_credentials/seed-sha256-sess"
printf '%s' 'Digest username="carol", realm="r", nonce="n", uri="sip:r", response="00112233445566778899aabbccddeeff"' > "$corpus/digest_credentials/seed-rfc2069"

find "$corpus/uri" "$corpus/digest_credentials" "$corpus/sdp" "$corpus/sip_headers" -type f -empty -delete
echo "seeded from $n torture messages into $corpus"

# The media and WebSocket seeds, made by sambung-media itself (a plain build, no sanitizer).
(cd "$here" && cargo run --quiet --example seed_corpora -- "$corpus")
