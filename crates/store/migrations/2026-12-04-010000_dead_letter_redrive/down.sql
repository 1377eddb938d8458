ALTER TABLE dead_letters
    DROP COLUMN redriven_to,
    DROP COLUMN redriven_at;
