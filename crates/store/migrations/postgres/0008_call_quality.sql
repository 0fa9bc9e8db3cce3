-- Issue 16: what each side's audio looked like on arrival at the relay, per call record
-- (RFC 3550 reception statistics). The quality estimate (E-model) is computed from them on reading.
CREATE TABLE cdr_legs (
    cdr_id BIGINT NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    side TEXT NOT NULL CHECK (side IN ('caller', 'callee')),
    packets BIGINT NOT NULL,
    lost BIGINT NOT NULL,
    jitter_us BIGINT NOT NULL,
    payload_type INTEGER,
    -- Round trip between the relay and the side's device, from RTCP, when measured.
    rtt_us BIGINT,
    PRIMARY KEY (cdr_id, side)
);
