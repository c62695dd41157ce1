-- Webhook deduplication without a held row lock: a delivery claims its event for a lease (its own
-- token, until claimed_until on the database's clock) in one short statement, processes it, then
-- marks it processed. Identical deliveries see the claim at once instead of waiting on a lock with a
-- pooled connection; a claim whose delivery died runs out, and the event can be processed again.
ALTER TABLE webhook_events
    ADD COLUMN claim_token   uuid,
    ADD COLUMN claimed_until timestamptz;
