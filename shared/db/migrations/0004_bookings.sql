-- Bookings: a student's paid session with a mentor, from a hold awaiting payment to its outcome.
-- Statuses follow the state machine in shared/bookings/states.py:
--   pending_payment -> confirmed | expired | cancelled
--   confirmed       -> completed | no_show | cancelled
-- The price, currency, commission and refund policy are copied from the mentor and the platform
-- when the booking is made, so later rate or policy changes never alter it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE bookings (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    student_id           uuid NOT NULL REFERENCES users (id),
    mentor_id            uuid NOT NULL REFERENCES mentors (id),
    -- The session's start ("scheduled_at" as the original names it) and end.
    scheduled_at         timestamptz NOT NULL,
    ends_at              timestamptz NOT NULL,
    status               text NOT NULL DEFAULT 'pending_payment'
                         CHECK (status IN ('pending_payment', 'confirmed', 'completed', 'cancelled', 'expired', 'no_show')),
    price_minor          bigint NOT NULL CHECK (price_minor >= 0),
    currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    commission_bps       integer NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000),
    policy               jsonb NOT NULL,
    notes                text NOT NULL DEFAULT '' CHECK (length(notes) <= 2000),
    -- Until when a pending_payment booking holds its slot (the payment flow expires it after).
    hold_expires_at      timestamptz,
    -- When it became confirmed (paid, or free and so confirmed at creation); kept through later
    -- statuses, so a cancelled booking still tells whether money had been taken.
    confirmed_at         timestamptz,
    cancelled_by         uuid REFERENCES users (id),
    cancelled_by_role    text CHECK (cancelled_by_role IN ('student', 'mentor', 'admin')),
    cancellation_reason  text CHECK (length(cancellation_reason) <= 2000),
    cancelled_at         timestamptz,
    -- The refund the policy grants on cancellation or no-show; the payment flow executes it.
    refund_due_minor     bigint CHECK (refund_due_minor >= 0),
    no_show_party        text CHECK (no_show_party IN ('student', 'mentor')),
    reschedule_count     integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (scheduled_at < ends_at),
    CHECK ((status = 'no_show') = (no_show_party IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    -- A free booking has nothing to pay, so it never waits for a payment: it is confirmed at once.
    CHECK (price_minor > 0 OR status <> 'pending_payment'),
    -- A mentor's bookings that hold their slot never overlap, whatever the race: the database
    -- refuses the second one (Cal.com still lacks this, see ../design notes §7).
    CONSTRAINT bookings_mentor_no_overlap EXCLUDE USING gist (
        mentor_id WITH =, tstzrange(scheduled_at, ends_at) WITH &&
    ) WHERE (status IN ('pending_payment', 'confirmed')),
    -- Nor can a student be in two sessions at once.
    CONSTRAINT bookings_student_no_overlap EXCLUDE USING gist (
        student_id WITH =, tstzrange(scheduled_at, ends_at) WITH &&
    ) WHERE (status IN ('pending_payment', 'confirmed'))
);

-- Named as the original names them: a participant's bookings by time (lists and stats), and
-- status filtering (housekeeping sweeps of pending and confirmed bookings).
CREATE INDEX bookings_student_id_scheduled_at_idx ON bookings (student_id, scheduled_at DESC, id DESC);
CREATE INDEX bookings_mentor_id_scheduled_at_idx ON bookings (mentor_id, scheduled_at DESC, id DESC);
CREATE INDEX bookings_status_idx ON bookings (status, scheduled_at);

-- Each reschedule moves the booking (its id, payment and orchestration stay) and leaves this link
-- from the old times to the new.
CREATE TABLE booking_reschedules (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id     uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    old_start      timestamptz NOT NULL,
    old_end        timestamptz NOT NULL,
    new_start      timestamptz NOT NULL,
    new_end        timestamptz NOT NULL,
    rescheduled_by uuid NOT NULL REFERENCES users (id),
    reason         text CHECK (length(reason) <= 2000),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX booking_reschedules_booking_idx ON booking_reschedules (booking_id, id);

-- Idempotency-Key replay (draft-ietf-httpapi-idempotency-key-header): a key is per user and
-- operation; the request's fingerprint tells a replay (same body) from a misuse (different body).
-- Written in the transaction that performs the operation, so a key never outlives a rolled-back
-- write, and a concurrent duplicate waits on the row lock instead of performing it twice.
CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    operation       text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint     bytea NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, operation, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
