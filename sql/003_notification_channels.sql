-- Notification channels (OMA NC 5.2.2.2, 6.1, 6.2, 6.4) and the outbox of
-- notifications queued for them. Applied once by the core inside a
-- transaction, like every migration: no BEGIN/COMMIT here.
--
-- The scripts (nc/channels.lua) validate and fill every field before
-- writing; the CHECKs are a backstop, so that no path can store a channel
-- the API could not have granted.
CREATE TABLE channels (
  -- 128 bits from core.random_id(): unguessable (API.md 2), URL-safe.
  channel_id        TEXT PRIMARY KEY,
  -- Decoded userId ("tel:+19585550100"); a channel answers only under it.
  user_id           TEXT NOT NULL CHECK (user_id <> ''),
  -- Only the types this server serves; OMAPush and NativeChannel are
  -- refused with POL1023 before anything is stored.
  channel_type      TEXT NOT NULL CHECK (channel_type IN ('LongPolling', 'WebSockets')),
  -- Stored and returned verbatim, NULL when the client sent none (5.2.2.2:
  -- the server SHALL NOT generate them).
  client_correlator TEXT,
  application_tag   TEXT,
  -- channelData (5.2.2.6, 5.2.2.10) as granted. channelURL is not stored:
  -- it is derived from public_url, channel_type and the ids.
  max_notifications INTEGER NOT NULL CHECK (max_notifications >= 1),
  -- LongPollingData only; NULL exactly for WebSockets channels.
  max_wait_time     INTEGER CHECK (max_wait_time >= 0),
  -- The last segment of callbackURL, 128 bits like channel_id and unrelated
  -- to it, so an enabler holding the callbackURL learns nothing of the
  -- channel's URLs.
  callback_id       TEXT NOT NULL UNIQUE,
  -- Granted lifetime in seconds (the value of channelLifetime in the
  -- channel's representation), and the absolute end of it: seconds since
  -- the Unix epoch as core.now() gives them. Stored absolute so that a
  -- restart keeps every channel's expiry.
  lifetime          INTEGER NOT NULL CHECK (lifetime >= 1),
  expires_at        REAL NOT NULL,
  created_at        REAL NOT NULL,
  CHECK ((channel_type = 'LongPolling') = (max_wait_time IS NOT NULL)),
  -- A repeated create with the same clientCorrelator finds the first
  -- channel instead of making a second (API.md 2). NULLs are distinct in a
  -- UNIQUE constraint, so channels without a correlator never collide.
  -- The index also serves listing a user's channels (user_id prefix).
  UNIQUE (user_id, client_correlator)
);

-- The expiry timer looks for the next channel to expire and for every
-- channel already past its end.
CREATE INDEX channels_expires_at ON channels (expires_at);

-- Notifications stored for delivery, in the order they arrived.
CREATE TABLE outbox (
  -- AUTOINCREMENT: seq only grows, even after the newest rows are
  -- delivered and deleted, so "deliver in seq order" is arrival order
  -- across restarts too.
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  -- Deleting (or expiring) a channel deletes everything queued for it; the
  -- core turns foreign_keys on for every connection.
  channel_id  TEXT NOT NULL REFERENCES channels (channel_id) ON DELETE CASCADE,
  -- The notification's root element name ("movieNotification"), so a
  -- notificationList can be assembled without parsing the body again.
  root        TEXT NOT NULL CHECK (root <> ''),
  -- The format the enabler sent it in; the body is kept as sent.
  format      TEXT NOT NULL CHECK (format IN ('json', 'xml')),
  body        TEXT NOT NULL,
  created_at  REAL NOT NULL
);

-- Delivery reads a channel's rows in seq order; the cascade finds them too.
CREATE INDEX outbox_channel ON outbox (channel_id, seq);
