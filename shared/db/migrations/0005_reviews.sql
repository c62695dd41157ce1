-- Reviews: one per completed booking, by its student. The mentor's rating and rating_count are the
-- aggregate of these rows, recomputed in the transaction that writes a review.
CREATE TABLE reviews (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id  uuid NOT NULL CONSTRAINT reviews_booking_id_key UNIQUE REFERENCES bookings (id),
    mentor_id   uuid NOT NULL REFERENCES mentors (id),
    student_id  uuid NOT NULL REFERENCES users (id),
    rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body        text NOT NULL DEFAULT '' CHECK (length(body) <= 5000),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A mentor's reviews, newest first, keyset-paginated on (created_at, id).
CREATE INDEX reviews_mentor_id_idx ON reviews (mentor_id, created_at DESC, id DESC);
