-- Movie subscriptions (API.md 3): a user's wish to hear, through one of
-- its notification channels, about changes to some movies or all of them.
-- Applied once by the core inside a transaction, like every migration.
--
-- Fan-out shape: one movie change finds its subscriptions through the
-- filter index (or the all-movies index) and queues one outbox row each in
-- a single INSERT ... SELECT, so a change matched by 10,000 subscriptions
-- is one statement, not 10,000 round trips through Lua. What differs per
-- subscription in a notification (callbackData, the link) is therefore
-- kept here ready to drop into the text the scripts formatted once.
CREATE TABLE movie_subscriptions (
  -- 128 bits from core.random_id(), URL-safe.
  subscription_id      TEXT PRIMARY KEY,
  -- Decoded userId; a subscription answers only under it.
  user_id              TEXT NOT NULL CHECK (user_id <> ''),
  -- The channel whose callbackURL was the notifyURL. Deleting or expiring
  -- the channel removes its subscriptions.
  channel_id           TEXT NOT NULL REFERENCES channels (channel_id) ON DELETE CASCADE,
  -- callbackReference as the client sent it.
  notify_url           TEXT NOT NULL,
  callback_data        TEXT,
  -- callbackData ready for the fan-out: as a JSON string literal (with its
  -- quotes) and as XML character data (escaped); NULL when there is none.
  callback_data_json   TEXT,
  callback_data_xml    TEXT,
  notification_format  TEXT NOT NULL CHECK (notification_format IN ('json', 'xml')),
  -- The subscription's path below public_url, for the notification's
  -- link and its resourceURL (public_url may change between starts).
  resource_path        TEXT NOT NULL,
  -- 1 when the subscription has no filter: every movie.
  all_movies           INTEGER NOT NULL CHECK (all_movies IN (0, 1)),
  client_correlator    TEXT,
  -- Granted duration in seconds, and its absolute end (core.now() seconds).
  duration             INTEGER NOT NULL CHECK (duration >= 1),
  expires_at           REAL NOT NULL,
  created_at           REAL NOT NULL,
  UNIQUE (user_id, client_correlator)
);

CREATE INDEX movie_subscriptions_expires_at ON movie_subscriptions (expires_at);
CREATE INDEX movie_subscriptions_channel ON movie_subscriptions (channel_id);
-- Only the unfiltered ones: every movie change reads all of them.
CREATE INDEX movie_subscriptions_all ON movie_subscriptions (subscription_id)
  WHERE all_movies = 1;

-- filter.movieId: one row per (movie, subscription), keyed by movie first
-- so a change finds its subscriptions by the movie id alone.
CREATE TABLE movie_subscription_filter (
  movie_id         INTEGER NOT NULL,
  subscription_id  TEXT NOT NULL REFERENCES movie_subscriptions (subscription_id)
                   ON DELETE CASCADE,
  PRIMARY KEY (movie_id, subscription_id)
) WITHOUT ROWID;

-- The cascade from movie_subscriptions looks rows up by subscription.
CREATE INDEX movie_subscription_filter_subscription
  ON movie_subscription_filter (subscription_id);
