DROP TABLE sync_seen;
