#!/usr/bin/env bash
# Makes the spoken prompts of voicemail and the mailbox menu: crates/server/prompts/<name>.wav,
# built into the binary by crates/server/src/apps/prompts.rs (one `Prompt` variant per line of
# the list below; its doc comment repeats the text).
#
# Each text is spoken by espeak-ng (American English, 150 words a minute), then sox makes it
# 16 kHz, mono, 16-bit PCM, peak-normalised to -3 dBFS, with the silence at either end cut and
# 50 ms put back. Without dither and with espeak-ng and sox at the same versions, every run gives
# the same bytes, so the files are committed and this script rerun only when a text changes:
#   sudo apt-get install -y espeak-ng sox && scripts/make-prompts.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in espeak-ng sox; do
  if ! command -v "$tool" >/dev/null; then
    echo "make-prompts: $tool is missing (sudo apt-get install -y espeak-ng sox)" >&2
    exit 1
  fi
done

OUT=crates/server/prompts
VOICE=(-v en-us -s 150)

# name|text. "PIN" is written "pin": in capitals espeak-ng spells it out, P-I-N.
PROMPTS='
  greeting_intro|The person at
  greeting_unavailable|is not available. Please leave your message after the tone. When you are done, hang up, or press the pound key.
  digit_0|zero
  digit_1|one
  digit_2|two
  digit_3|three
  digit_4|four
  digit_5|five
  digit_6|six
  digit_7|seven
  digit_8|eight
  digit_9|nine
  number_10|ten
  number_11|eleven
  number_12|twelve
  number_13|thirteen
  number_14|fourteen
  number_15|fifteen
  number_16|sixteen
  number_17|seventeen
  number_18|eighteen
  number_19|nineteen
  number_20|twenty
  number_30|thirty
  number_40|forty
  number_50|fifty
  number_60|sixty
  number_70|seventy
  number_80|eighty
  number_90|ninety
  hundred|hundred
  letter_a|a
  letter_b|b
  letter_c|c
  letter_d|d
  letter_e|e
  letter_f|f
  letter_g|g
  letter_h|h
  letter_i|i
  letter_j|j
  letter_k|k
  letter_l|l
  letter_m|m
  letter_n|n
  letter_o|o
  letter_p|p
  letter_q|q
  letter_r|r
  letter_s|s
  letter_t|t
  letter_u|u
  letter_v|v
  letter_w|w
  letter_x|x
  letter_y|y
  letter_z|z
  star|star
  pound|pound
  mailbox_number|Please enter your mailbox number, followed by the pound key.
  enter_pin|Please enter your pin, followed by the pound key.
  login_incorrect|That mailbox number or pin is not correct.
  goodbye|Goodbye.
  you_have|You have
  new_message|new message
  new_messages|new messages
  saved_message|saved message
  saved_messages|saved messages
  and|and
  no_messages|You have no messages.
  main_menu|To listen to new messages, press 1. For saved messages, press 2. To record your greeting, press 3. To change your pin, press 4. To hang up, press star.
  message|Message
  from|from
  unknown_caller|an unknown caller
  message_menu|To play it again, press 4. To save it, press 9. To delete it, press 7. To call back, press 5. To forward it to another mailbox, press 8. For the next message, press 6. For the main menu, press star.
  message_deleted|Message deleted.
  message_saved|Message saved.
  forward_to|Enter the mailbox number to forward this message to, followed by the pound key.
  message_forwarded|Message forwarded.
  unknown_mailbox|There is no such mailbox.
  no_more_messages|There are no more messages.
  record_greeting|Record your greeting after the tone. When you are done, press the pound key.
  greeting_saved|Your greeting is saved.
  new_pin|Enter your new pin, four to twelve digits, followed by the pound key.
  pin_changed|Your pin is changed.
  invalid_pin|That pin is not valid.
  invalid_option|That is not a valid choice.
  calling_back|Calling back.
  forward_on|Call forwarding is on.
  forward_off|Call forwarding is off.
  dnd_on|Do not disturb is on.
  dnd_off|Do not disturb is off.
  invalid_code|That feature code is not valid.
  message_recorded|Your message is recorded. Goodbye.
  too_many_attempts|Too many attempts. Goodbye.
  enter_extension|Please enter the extension of the person you are calling.
  choose_option|Please choose an option on your keypad.
  not_available|The person you are calling is not available. Please make another choice.
  no_such_extension|There is no one at that extension.
  you_are_caller|All our agents are busy. You are caller number
  queue_message|To leave a message instead, press 1.
  agent_logged_in|You are logged in to your queues.
  agent_logged_out|You are logged out of your queues.
  no_call_to_pick_up|There is no call to pick up.
  call_recorded|This call is recorded.
'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$OUT"
# Start from an empty directory, so a prompt taken off the list leaves no file behind.
rm -f "$OUT"/*.wav

count=0
while IFS='|' read -r name text; do
  name=${name//[[:space:]]/}
  [[ -z $name ]] && continue
  espeak-ng "${VOICE[@]}" -w "$tmp/raw.wav" -- "$text"
  # silence 1 0.01 0.1%: drop everything before the first 10 ms above 0.1% of full scale;
  # reversed, the same drops the trailing silence. -D: no dither, so the output is repeatable.
  sox -D -R "$tmp/raw.wav" -b 16 -e signed-integer -c 1 "$OUT/$name.wav" \
    silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
    rate -v 16000 gain -n -3 pad 0.05 0.05
  count=$((count + 1))
done <<<"$PROMPTS"

echo "make-prompts: $count prompts in $OUT ($(du -sh "$OUT" | cut -f1))"
