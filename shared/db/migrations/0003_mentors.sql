-- Mentors: a mentor-role user's public profile, price, payout UPI id and availability.
-- The profile's id is the mentor user's id: one profile per user, no second identifier to map.
CREATE TABLE mentors (
    id                   uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    headline             text NOT NULL CHECK (length(headline) BETWEEN 1 AND 200),
    bio                  text NOT NULL DEFAULT '' CHECK (length(bio) <= 5000),
    skills               text[] NOT NULL DEFAULT '{}' CHECK (cardinality(skills) <= 30),
    languages            text[] NOT NULL DEFAULT '{}' CHECK (cardinality(languages) <= 20),
    years_experience     integer NOT NULL DEFAULT 0 CHECK (years_experience BETWEEN 0 AND 80),
    timezone             text NOT NULL,
    -- Money in integer minor units (paise, cents) with its ISO 4217 currency.
    hourly_rate_minor    bigint NOT NULL CHECK (hourly_rate_minor >= 0),
    currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    upi_id               text,
    is_active            boolean NOT NULL DEFAULT true,
    -- Derived from reviews by updateMentorRating; never set by clients.
    rating               numeric(3, 2) NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    rating_count         integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    min_notice_minutes   integer NOT NULL DEFAULT 120 CHECK (min_notice_minutes BETWEEN 0 AND 43200),
    booking_window_days  integer NOT NULL DEFAULT 60 CHECK (booking_window_days BETWEEN 1 AND 365),
    session_lengths      integer[] NOT NULL DEFAULT '{30,60}'
                         CHECK (cardinality(session_lengths) BETWEEN 1 AND 6 AND 0 < ALL (session_lengths)),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Discovery: one partial index per sort, in the sort's order with id as the tie-breaker, so a
-- keyset page is an index range scan (ORDER BY must name these columns, not aliases).
CREATE INDEX mentors_is_active_rating_idx ON mentors (rating DESC, id DESC) WHERE is_active;
CREATE INDEX mentors_is_active_price_idx ON mentors (hourly_rate_minor, id) WHERE is_active;
CREATE INDEX mentors_is_active_created_idx ON mentors (created_at DESC, id DESC) WHERE is_active;
-- Filters by skill and language (array containment).
CREATE INDEX mentors_skills_idx ON mentors USING gin (skills) WHERE is_active;
CREATE INDEX mentors_languages_idx ON mentors USING gin (languages) WHERE is_active;

-- Weekly availability in the mentor's time zone: weekday 1 = Monday … 7 = Sunday (ISO).
CREATE TABLE mentor_weekly_hours (
    mentor_id  uuid NOT NULL REFERENCES mentors (id) ON DELETE CASCADE,
    weekday    smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time time NOT NULL,
    end_time   time NOT NULL,
    CHECK (start_time < end_time),
    PRIMARY KEY (mentor_id, weekday, start_time)
);

-- Date overrides in the mentor's time zone: a day off (no times) replaces that day's weekly hours;
-- a row with times adds extra hours on that date.
CREATE TABLE mentor_date_overrides (
    mentor_id  uuid NOT NULL REFERENCES mentors (id) ON DELETE CASCADE,
    on_date    date NOT NULL,
    start_time time,
    end_time   time,
    CHECK ((start_time IS NULL) = (end_time IS NULL) AND (start_time IS NULL OR start_time < end_time))
);

CREATE INDEX mentor_date_overrides_mentor_date_idx ON mentor_date_overrides (mentor_id, on_date);
