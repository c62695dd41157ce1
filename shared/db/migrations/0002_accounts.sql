-- Accounts: students, mentors and admins, and the refresh tokens of their sessions.
-- Emails are stored normalised (trimmed, lower-case) by the app; the unique constraint is on that form.
CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CONSTRAINT users_email_key UNIQUE CHECK (email = lower(btrim(email))),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role           text NOT NULL CHECK (role IN ('student', 'mentor', 'admin')),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated', 'deleted')),
    -- NULL once the account is deleted: nobody can log in to an anonymised account.
    password_hash  text CHECK ((password_hash IS NULL) = (status = 'deleted')),
    -- Bumped whenever access tokens issued before must stop working (deactivation, role change, deletion).
    auth_version   integer NOT NULL DEFAULT 1,
    deactivated_at timestamptz,
    deleted_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Admin listing: filter by role and/or status, newest first, keyset pagination on (created_at, id).
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_role_status_created_idx ON users (role, status, created_at DESC, id DESC);

-- Opaque refresh tokens, stored only as SHA-256 hashes. A login starts a family; every refresh
-- rotates within it. Presenting a token that was already rotated revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL CONSTRAINT refresh_tokens_hash_key UNIQUE,
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
