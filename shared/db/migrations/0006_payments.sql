-- Payments: the money side of a booking, kept apart from the booking's own status.
-- One row per provider object (a Razorpay order or a Stripe PaymentIntent). Amounts are integer
-- minor units (paise, cents). Statuses only move forward (shared/payments/states.py):
--   created -> pending -> succeeded -> refund_pending -> refunded | partially_refunded
--   created | pending -> failed -> succeeded (Razorpay may authorise days after a failure)
CREATE TABLE payments (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id           uuid NOT NULL REFERENCES bookings (id),
    provider             text NOT NULL CHECK (provider IN ('razorpay', 'stripe')),
    -- order_… (Razorpay) or pi_… (Stripe)
    provider_id          text NOT NULL,
    -- The captured payment inside the provider object: pay_… (Razorpay); the PaymentIntent itself for Stripe.
    provider_payment_id  text,
    amount_minor         bigint NOT NULL CHECK (amount_minor > 0),
    currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status               text NOT NULL DEFAULT 'created'
                         CHECK (status IN ('created', 'pending', 'succeeded', 'failed',
                                           'refund_pending', 'refunded', 'partially_refunded')),
    -- The provider's last object as it sent it (creation response, then webhook payloads).
    raw                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    succeeded_at         timestamptz,
    -- When the provider confirmed the object can no longer be paid (a Stripe intent cancelled after
    -- its hold). Until then a failed Stripe payment is still asked about: its intent may be paid.
    closed_at            timestamptz,
    -- When reconciliation last asked the provider about it (it takes the least recently asked first).
    reconciled_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_provider_id_key UNIQUE (provider, provider_id),
    -- A booking has one payment attempt: its provider object is created once, idempotently.
    CONSTRAINT payments_booking_id_key UNIQUE (booking_id)
);

CREATE INDEX payments_status_idx ON payments (status, reconciled_at NULLS FIRST);

-- Refunds: at most one live (not failed) refund per payment (for a cancellation or no-show per the
-- booking's policy, or in full for a payment that arrived after its booking ended or was cancelled
-- before it was confirmed: never both and never twice). A refund the provider failed may be tried
-- again, as a new row with the next attempt number and its own idempotency key, a bounded number of
-- times. The row is written before the provider is called, with the idempotency key the provider
-- gets, so a retry after a crash reuses the key instead of refunding again.
CREATE TABLE refunds (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id           uuid NOT NULL REFERENCES payments (id),
    attempt              integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    provider_refund_id   text,
    idempotency_key      text NOT NULL CHECK (length(idempotency_key) BETWEEN 10 AND 255),
    amount_minor         bigint NOT NULL CHECK (amount_minor > 0),
    reason               text NOT NULL CHECK (reason IN ('cancellation', 'no_show', 'late_payment', 'unconfirmed')),
    -- requested: row written, provider not (yet) reached; pending: the provider accepted it;
    -- succeeded / failed: final, from the provider's webhook or reconciliation.
    status               text NOT NULL DEFAULT 'requested'
                         CHECK (status IN ('requested', 'pending', 'succeeded', 'failed')),
    raw                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_payment_attempt_key UNIQUE (payment_id, attempt),
    CONSTRAINT refunds_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT refunds_provider_refund_id_key UNIQUE (provider_refund_id)
);

CREATE UNIQUE INDEX refunds_one_live_per_payment ON refunds (payment_id) WHERE status <> 'failed';
CREATE INDEX refunds_status_idx ON refunds (status, updated_at);

-- Every webhook delivery we accepted (signature verified), deduplicated by the provider's event id.
CREATE TABLE webhook_events (
    provider      text NOT NULL CHECK (provider IN ('razorpay', 'stripe')),
    event_id      text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    PRIMARY KEY (provider, event_id)
);

CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (received_at) WHERE processed_at IS NULL;
