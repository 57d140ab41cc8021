-- Contacts who pressed 0 during a call ("never call me again"): no call is
-- made to them; their other channels are unchanged.
CREATE TABLE voice_stopped (
    contact_id TEXT PRIMARY KEY,
    since      BIGINT NOT NULL
);
