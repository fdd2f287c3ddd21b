-- Outbox status writes are fenced like the queue's: each take of a row gets
-- a fresh hold token, and a sender whose pass outlasted its hold (another
-- sender took the row over and may have sent it) writes nothing.
alter table notification_outbox add column hold_token uuid;
