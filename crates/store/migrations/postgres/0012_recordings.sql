-- Issue 17: call recordings. The audio is a file in <data_dir>/recordings named after the row;
-- the row says whose call it was, so that its parties (and administrators) find it.
CREATE TABLE recordings (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    call_number BIGINT NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE INDEX recordings_caller ON recordings (caller);
CREATE INDEX recordings_callee ON recordings (callee);
