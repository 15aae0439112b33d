-- Fan-out rows without their text (issue 5, "Fan-out is efficient").
-- Applied once by the core inside a transaction, like every migration.
--
-- A movie change matched by 10,000 subscriptions used to write 10,000
-- copies of a ~700-byte notification into the outbox in the change's
-- transaction (7 MB through the WAL), which held the event loop for
-- 100-200 ms. The text is the same for every subscription but for two
-- short parts (its callbackData and its resource path), so it is now
-- stored once per change as a template, cut at those two places, and each
-- outbox row holds only the two parts and the template's id. Delivery
-- reads the body put back together (nc/store.lua), exactly the text the
-- row used to hold.
--
-- A template lives as long as a row refers to it: the foreign key keeps
-- it while one does, and a sweep deletes the ones no row refers to any
-- more (nc/store.lua sweep_templates, run by nc/delivery.lua).
CREATE TABLE outbox_templates (
  template_id  INTEGER PRIMARY KEY AUTOINCREMENT,
  -- The text in each format, cut at the two places a row fills in:
  --   body = <format>_head || fill_1 || <format>_mid || fill_2 || <format>_tail
  -- A template holds both formats; each row picks its own by outbox.format.
  json_head    TEXT NOT NULL,
  json_mid     TEXT NOT NULL,
  json_tail    TEXT NOT NULL,
  xml_head     TEXT NOT NULL,
  xml_mid      TEXT NOT NULL,
  xml_tail     TEXT NOT NULL,
  created_at   REAL NOT NULL
);

-- The outbox again, with body optional: SQLite cannot drop NOT NULL from a
-- column in place, so the table is rebuilt and every queued row copied
-- with its seq (nothing lost; API.md 2).
CREATE TABLE outbox_rebuilt (
  -- AUTOINCREMENT: seq only grows, even after the newest rows are
  -- delivered and deleted, so "deliver in seq order" is arrival order
  -- across restarts too.
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  -- Deleting (or expiring) a channel deletes everything queued for it; the
  -- core turns foreign_keys on for every connection.
  channel_id   TEXT NOT NULL REFERENCES channels (channel_id) ON DELETE CASCADE,
  -- The notification's root element name ("movieNotification"), so a
  -- notificationList can be assembled without parsing the body again.
  root         TEXT NOT NULL CHECK (root <> ''),
  -- The format the notification is in; the body is kept as sent.
  format       TEXT NOT NULL CHECK (format IN ('json', 'xml')),
  -- Either the whole text (a notification posted to a callbackURL)...
  body         TEXT,
  -- ...or a template and the two parts that fill it (a movie fan-out),
  -- copied at queue time so that what is delivered no longer depends on
  -- the subscription (deleting it later changes nothing). fill_1 may be ''
  -- (a subscription without callbackData). No ON DELETE: a template in use
  -- cannot be deleted.
  template_id  INTEGER REFERENCES outbox_templates (template_id),
  fill_1       TEXT,
  fill_2       TEXT,
  created_at   REAL NOT NULL,
  CHECK (CASE WHEN template_id IS NULL
              THEN body IS NOT NULL AND fill_1 IS NULL AND fill_2 IS NULL
              ELSE body IS NULL AND fill_1 IS NOT NULL AND fill_2 IS NOT NULL END)
);

INSERT INTO outbox_rebuilt (seq, channel_id, root, format, body, created_at)
  SELECT seq, channel_id, root, format, body, created_at FROM outbox ORDER BY seq;

-- The copy set the new table's AUTOINCREMENT counter to the highest seq
-- copied; the old one may be higher (its newest rows delivered), and seqs
-- must never be reused. DROP TABLE removes the old counter and RENAME
-- carries this one over to the new name.
DELETE FROM sqlite_sequence WHERE name = 'outbox_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'outbox_rebuilt', seq FROM sqlite_sequence WHERE name = 'outbox';

DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;

-- Delivery reads a channel's rows in seq order; the cascade finds them too.
CREATE INDEX outbox_channel ON outbox (channel_id, seq);
-- The sweep, and the foreign key when a template is deleted, ask whether
-- any row still refers to a template. Only fan-out rows have one.
CREATE INDEX outbox_template ON outbox (template_id) WHERE template_id IS NOT NULL;
