-- An operator re-drives a dead letter (after a fix) back onto the events topic: when, and where
-- it landed.
ALTER TABLE dead_letters
    ADD COLUMN redriven_at TIMESTAMPTZ,
    ADD COLUMN redriven_to TEXT;
