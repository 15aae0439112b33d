-- The fan-out's own copy of what it needs of each subscription, keyed for
-- it (issue 5, "Fan-out is efficient"). Applied once by the core inside a
-- transaction, like every migration.
--
-- A movie change used to find its subscriptions through the filter
-- (movie_subscription_filter by movie, then each subscription by id and
-- its row) and the all-movies index (then each row), and each one's
-- channel by id and its row: four b-tree descents a subscription before
-- a row was written. Here one row per (movie, subscription) holds every
-- column the INSERT ... SELECT of movies/notify.lua writes, in primary key
-- order, so a change reads two ranges of this table and nothing else: its
-- movie's and movie 0's (every subscription without a filter; no movie
-- has id 0, movies.movie_id being an INTEGER PRIMARY KEY that starts at 1).
--
-- Rows are made by the triggers below as the subscription and its filter
-- are inserted (movies/subscriptions/store.lua, one transaction), and go
-- with the subscription through the foreign key (deleting it, its expiry,
-- or its channel's cascade into movie_subscriptions). A subscription row
-- is never updated, so the copy never goes stale.
CREATE TABLE movie_fanout (
  -- The movie of a filter row, or 0 for an unfiltered subscription.
  movie_id             INTEGER NOT NULL,
  subscription_id      TEXT NOT NULL REFERENCES movie_subscriptions (subscription_id)
                       ON DELETE CASCADE,
  channel_id           TEXT NOT NULL,
  notification_format  TEXT NOT NULL,
  -- outbox.fill_1: the callbackData member / element, wrapped for the
  -- format as movies/notify.lua's CALLBACK_JSON / CALLBACK_XML say ('' when
  -- the subscription has none); spec/movies/notify_spec.lua checks that
  -- the two agree.
  fill_1               TEXT NOT NULL,
  -- outbox.fill_2: the subscription's resource_path.
  fill_2               TEXT NOT NULL,
  -- The subscription's own end (its channel's is not checked by the
  -- fan-out; see movies/notify.lua).
  expires_at           REAL NOT NULL,
  PRIMARY KEY (movie_id, subscription_id)
) WITHOUT ROWID;

-- The cascade from movie_subscriptions finds a subscription's rows by it.
CREATE INDEX movie_fanout_subscription ON movie_fanout (subscription_id);

CREATE TRIGGER movie_fanout_all AFTER INSERT ON movie_subscriptions
  WHEN NEW.all_movies = 1
BEGIN
  INSERT INTO movie_fanout (movie_id, subscription_id, channel_id,
      notification_format, fill_1, fill_2, expires_at)
    VALUES (0, NEW.subscription_id, NEW.channel_id, NEW.notification_format,
      CASE NEW.notification_format
        WHEN 'json' THEN coalesce('"callbackData":' || NEW.callback_data_json || ',', '')
        ELSE coalesce('<callbackData>' || NEW.callback_data_xml || '</callbackData>', '')
      END,
      NEW.resource_path, NEW.expires_at);
END;

-- A filter row of an all-movies subscription (there is none; the store
-- never writes one) adds nothing: movie 0 already has it.
CREATE TRIGGER movie_fanout_filter AFTER INSERT ON movie_subscription_filter
BEGIN
  INSERT INTO movie_fanout (movie_id, subscription_id, channel_id,
      notification_format, fill_1, fill_2, expires_at)
    SELECT NEW.movie_id, s.subscription_id, s.channel_id, s.notification_format,
      CASE s.notification_format
        WHEN 'json' THEN coalesce('"callbackData":' || s.callback_data_json || ',', '')
        ELSE coalesce('<callbackData>' || s.callback_data_xml || '</callbackData>', '')
      END,
      s.resource_path, s.expires_at
      FROM movie_subscriptions s
     WHERE s.subscription_id = NEW.subscription_id AND s.all_movies = 0;
END;

-- The subscriptions there are already.
INSERT INTO movie_fanout (movie_id, subscription_id, channel_id,
    notification_format, fill_1, fill_2, expires_at)
  SELECT 0, s.subscription_id, s.channel_id, s.notification_format,
    CASE s.notification_format
      WHEN 'json' THEN coalesce('"callbackData":' || s.callback_data_json || ',', '')
      ELSE coalesce('<callbackData>' || s.callback_data_xml || '</callbackData>', '')
    END,
    s.resource_path, s.expires_at
    FROM movie_subscriptions s
   WHERE s.all_movies = 1
  UNION ALL
  SELECT f.movie_id, s.subscription_id, s.channel_id, s.notification_format,
    CASE s.notification_format
      WHEN 'json' THEN coalesce('"callbackData":' || s.callback_data_json || ',', '')
      ELSE coalesce('<callbackData>' || s.callback_data_xml || '</callbackData>', '')
    END,
    s.resource_path, s.expires_at
    FROM movie_subscription_filter f
    JOIN movie_subscriptions s ON s.subscription_id = f.subscription_id
   WHERE s.all_movies = 0;
