-- Foundation: the admin-managed UI configuration served to clients (read through the cache).
CREATE TABLE ui_config (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    value      jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO ui_config (key, value) VALUES
    ('theme', '{"primaryColor": "#4f46e5", "mode": "light"}'),
    ('features', '{"chat": true, "videoClasses": true, "reviews": true}');
