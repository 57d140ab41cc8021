-- `palabre status` counts rule errors and lists recent dead letters by event.
CREATE INDEX ledger_event ON ledger (event, seq);
