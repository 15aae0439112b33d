-- Every SQL statement on the channels and outbox tables
-- (sql/003_notification_channels.sql, sql/005_outbox_templates.sql) but
-- the movie fan-out's (movies/notify.lua). Values are always bound to "?"
-- parameters, never spliced into the text.
--
-- `db` is core.db (core/script.h). A failed statement is an expected
-- failure: nil, SVC2001 (503) and the SQLite message as a third value for
-- the caller to log. Rows come back as the table has them (snake_case
-- columns); nc/channels.lua turns them into representations.
local errors = require("codec.errors")
local tx = require("nc.tx")

local M = {}

local COLUMNS = "channel_id, user_id, channel_type, client_correlator,"
  .. " application_tag, max_notifications, max_wait_time, callback_id,"
  .. " lifetime, expires_at, created_at"

local function failed(msg)
  return nil, errors.new("SVC2001"), msg
end

local function first(rows, err)
  if not rows then
    return failed(err)
  end
  return rows[1] or false
end

-- Inserts a channel row (every column of COLUMNS). Returns true.
function M.insert(db, row)
  local changes, err = db.exec("INSERT INTO channels (" .. COLUMNS .. ")"
    .. " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    row.channel_id, row.user_id, row.channel_type, row.client_correlator,
    row.application_tag, row.max_notifications, row.max_wait_time,
    row.callback_id, row.lifetime, row.expires_at, row.created_at)
  if not changes then
    return failed(err)
  end
  return true
end

-- The row of channel `channel_id` owned by `user_id`, live or not; false
-- when there is none. Asking with the wrong user finds nothing: users are
-- isolated (API.md 2).
function M.get(db, user_id, channel_id)
  return first(db.query("SELECT " .. COLUMNS .. " FROM channels"
    .. " WHERE channel_id = ? AND user_id = ?", channel_id, user_id))
end

-- The row of channel `channel_id`, whoever owns it, live or not; false when
-- there is none. For the delivery side, which knows a channel by the hub
-- key alone (the channel id) once a WebSocket is open.
function M.by_id(db, channel_id)
  return first(db.query("SELECT " .. COLUMNS .. " FROM channels"
    .. " WHERE channel_id = ?", channel_id))
end

-- The row whose callbackURL ends in `callback_id`; false when none.
function M.by_callback(db, callback_id)
  return first(db.query("SELECT " .. COLUMNS .. " FROM channels"
    .. " WHERE callback_id = ?", callback_id))
end

-- The row `user_id` created with `correlator`; false when none.
function M.by_correlator(db, user_id, correlator)
  return first(db.query("SELECT " .. COLUMNS .. " FROM channels"
    .. " WHERE user_id = ? AND client_correlator = ?", user_id, correlator))
end

-- The live channels of `user_id` (expires_at after `now`), in the order they
-- were created. rowid, not created_at: two creates in the same millisecond
-- must still list in creation order, and SQLite gives a new row a rowid
-- above every existing one.
function M.list(db, user_id, now)
  local rows, err = db.query("SELECT " .. COLUMNS .. " FROM channels"
    .. " WHERE user_id = ? AND expires_at > ?"
    .. " ORDER BY rowid", user_id, now)
  if not rows then
    return failed(err)
  end
  return rows
end

-- How many live channels `user_id` has at `now` (as M.list would list),
-- for the per-user limit (nc/policy.lua max_channels_per_user). The
-- UNIQUE (user_id, client_correlator) index finds them by user.
function M.count_live(db, user_id, now)
  local rows, err = db.query("SELECT count(*) AS n FROM channels"
    .. " WHERE user_id = ? AND expires_at > ?", user_id, now)
  if not rows then
    return failed(err)
  end
  return rows[1].n
end

-- Deletes a channel and (ON DELETE CASCADE) its queued notifications.
-- Returns true, or false when it was already gone.
function M.delete(db, channel_id)
  local changes, err = db.exec("DELETE FROM channels WHERE channel_id = ?",
    channel_id)
  if not changes then
    return failed(err)
  end
  return changes == 1
end

-- Sets a channel's granted lifetime and its new end. Returns true, or
-- false when the channel is gone.
function M.set_lifetime(db, channel_id, lifetime, expires_at)
  local changes, err = db.exec("UPDATE channels SET lifetime = ?, expires_at = ?"
    .. " WHERE channel_id = ?", lifetime, expires_at, channel_id)
  if not changes then
    return failed(err)
  end
  return changes == 1
end

-- The ids of every channel whose end is at or before `now`.
function M.expired(db, now)
  local rows, err = db.query("SELECT channel_id FROM channels"
    .. " WHERE expires_at <= ? ORDER BY expires_at", now)
  if not rows then
    return failed(err)
  end
  local ids = {}
  for i, row in ipairs(rows) do
    ids[i] = row.channel_id
  end
  return ids
end

-- The earliest expires_at of any channel, or false when there is none.
function M.next_expiry(db)
  local rows, err = db.query("SELECT min(expires_at) AS t FROM channels")
  if not rows then
    return failed(err)
  end
  local t = rows[1] and rows[1].t
  return t ~= nil and tonumber(t) or false
end

-- Queues one notification for `channel_id`. Returns its seq.
function M.enqueue(db, channel_id, root, format, body, now)
  local changes, seq = db.exec("INSERT INTO outbox"
    .. " (channel_id, root, format, body, created_at) VALUES (?, ?, ?, ?, ?)",
    channel_id, root, format, body, now)
  if not changes then
    return failed(seq)
  end
  return seq
end

-- How many notifications are queued for `channel_id`, counting no further
-- than `limit`: the answer is min(queued, limit), for the cap on a
-- channel's queue (nc/policy.lua max_queued_notifications). The inner
-- LIMIT stops the walk of the outbox_channel index at `limit` entries, so
-- a full channel costs the same to check however far past the cap a
-- fan-out took it.
function M.count_queued(db, channel_id, limit)
  local rows, err = db.query("SELECT count(*) AS n FROM"
    .. " (SELECT 1 FROM outbox WHERE channel_id = ? LIMIT ?)", channel_id, limit)
  if not rows then
    return failed(err)
  end
  return rows[1].n
end

-- A queued notification as delivery reads it: seq, root, format, body,
-- created_at. A row queued by a movie fan-out holds no body of its own but
-- a template and the two parts that fill it in
-- (sql/005_outbox_templates.sql); its body is put back together here, in
-- the SELECT, so that nothing after it can tell the two kinds of row
-- apart. The template is found by its primary key, one lookup per row
-- read; the LEFT JOIN keeps rows without one. Every read of a body must
-- go through this: outbox.body alone is NULL for fan-out rows.
M.QUEUED_COLUMNS = "o.seq AS seq, o.root AS root, o.format AS format,"
  .. " CASE WHEN o.template_id IS NULL THEN o.body"
  .. " WHEN o.format = 'json'"
  .. " THEN t.json_head || o.fill_1 || t.json_mid || o.fill_2 || t.json_tail"
  .. " ELSE t.xml_head || o.fill_1 || t.xml_mid || o.fill_2 || t.xml_tail"
  .. " END AS body, o.created_at AS created_at"
M.QUEUED_FROM = " FROM outbox o"
  .. " LEFT JOIN outbox_templates t ON t.template_id = o.template_id"

-- The queued notifications of `channel_id` after seq `after` (0: from the
-- oldest) in seq order, at most `limit` (nil: all).
function M.queued_after(db, channel_id, after, limit)
  local rows, err = db.query("SELECT " .. M.QUEUED_COLUMNS .. M.QUEUED_FROM
    .. " WHERE o.channel_id = ? AND o.seq > ? ORDER BY o.seq LIMIT ?",
    channel_id, after, limit or -1)
  if not rows then
    return failed(err)
  end
  return rows
end

-- Deletes the notifications `seqs` of `channel_id` (delivered ones), in one
-- transaction. Returns the number deleted: fewer than #seqs when some were
-- already gone (delivered twice, or their channel removed).
function M.dequeue(db, channel_id, seqs)
  return tx.run(db, function()
    local n = 0
    for _, seq in ipairs(seqs) do
      local changes, err = db.exec("DELETE FROM outbox WHERE channel_id = ? AND seq = ?",
        channel_id, seq)
      if not changes then
        tx.abort(errors.new("SVC2001"), err)
      end
      n = n + changes
    end
    return n
  end)
end

-- Deletes the delivered notifications of several channels in one
-- transaction: `batches` is a list of { channel_id = ..., seqs = {...} }.
-- Returns the number deleted (fewer when some were already gone).
function M.dequeue_batch(db, batches)
  return tx.run(db, function()
    local n = 0
    for _, b in ipairs(batches) do
      for _, seq in ipairs(b.seqs) do
        local changes, err = db.exec("DELETE FROM outbox WHERE channel_id = ? AND seq = ?",
          b.channel_id, seq)
        if not changes then
          tx.abort(errors.new("SVC2001"), err)
        end
        n = n + changes
      end
    end
    return n
  end)
end

-- The channel of each queued notification with a seq in [first, last], in
-- seq order, at most `limit`: rows { seq, channel_id }. For waking the
-- channels a fan-out queued notifications for (nc/delivery.lua).
function M.channels_in(db, first, last, limit)
  local rows, err = db.query("SELECT seq, channel_id FROM outbox"
    .. " WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?", first, last, limit)
  if not rows then
    return failed(err)
  end
  return rows
end

-- The queued notifications of `channel_id` in seq order, at most `limit`
-- (nil: all).
function M.queued(db, channel_id, limit)
  local rows, err = db.query("SELECT " .. M.QUEUED_COLUMNS .. M.QUEUED_FROM
    .. " WHERE o.channel_id = ? ORDER BY o.seq LIMIT ?",
    channel_id, limit or -1)
  if not rows then
    return failed(err)
  end
  return rows
end

---------------------------------------------------------------------------
-- Outbox templates (sql/005_outbox_templates.sql)
---------------------------------------------------------------------------

-- Stores the text shared by the rows of one fan-out: `pieces` is
-- { json = { head, mid, tail }, xml = { head, mid, tail } }, the text of
-- each format cut where a row's fill_1 and fill_2 go. Returns its
-- template_id, for the rows to refer to.
function M.add_template(db, pieces, now)
  local j, x = pieces.json, pieces.xml
  local changes, id = db.exec("INSERT INTO outbox_templates"
    .. " (json_head, json_mid, json_tail, xml_head, xml_mid, xml_tail, created_at)"
    .. " VALUES (?, ?, ?, ?, ?, ?, ?)", j[1], j[2], j[3], x[1], x[2], x[3], now)
  if not changes then
    return failed(id)
  end
  return id
end

-- Deletes template `template_id` unless a row refers to it (a fan-out that
-- matched nobody). Returns true when it was deleted.
function M.drop_template(db, template_id)
  local changes, err = db.exec("DELETE FROM outbox_templates WHERE template_id = ?"
    .. " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.template_id = ?)",
    template_id, template_id)
  if not changes then
    return failed(err)
  end
  return changes == 1
end

-- One step of the sweep of unused templates: looks at the next `limit`
-- templates after template_id `after` (0: from the first) and deletes
-- those no outbox row refers to any more (their rows were delivered, or
-- went with their channel). Returns the number deleted and where the next
-- step starts, or false for it when this step reached the last template.
--
-- Each template costs one probe of outbox_template, so a step costs
-- `limit` probes at most, however many templates are still in use (one
-- per change whose notifications are not all delivered yet). The foreign
-- key makes the delete check the same index again, and would refuse to
-- delete a template in use.
function M.sweep_templates(db, after, limit)
  local rows, err = db.query("SELECT max(template_id) AS last, count(*) AS n FROM"
    .. " (SELECT template_id FROM outbox_templates WHERE template_id > ?"
    .. " ORDER BY template_id LIMIT ?)", after, limit)
  if not rows then
    return failed(err)
  end
  local last, n = rows[1].last, rows[1].n
  if n == 0 then
    return 0, false
  end
  local changes
  changes, err = db.exec("DELETE FROM outbox_templates"
    .. " WHERE template_id > ? AND template_id <= ?"
    .. " AND NOT EXISTS (SELECT 1 FROM outbox o"
    .. " WHERE o.template_id = outbox_templates.template_id)", after, last)
  if not changes then
    return failed(err)
  end
  return changes, n == limit and last
end

return M
