-- Every SQL statement on the movie_subscriptions and
-- movie_subscription_filter tables (sql/004_movie_subscriptions.sql).
-- Their inserts also fill movie_fanout, the fan-out's copy
-- (sql/006_movie_fanout.sql), through its triggers, and their deletes
-- empty it through its foreign key: nothing here writes it.
-- Values are always bound to "?" parameters, never spliced into the text,
-- and every statement's text is fixed: a list of movie ids travels as one
-- JSON array bound to json_each(?), so core.db's statement cache holds one
-- statement per query, not one per list length.
--
-- `db` is core.db (core/script.h). A failed statement is an expected
-- failure: nil, SVC2001 (503) and the SQLite message as a third value for
-- the caller to log. Rows come back with the table's snake_case columns,
-- plus channel_expires_at (the end of the subscription's channel) where
-- the channel is joined.
local errors = require("codec.errors")
local json = require("codec.json")

local M = {}

local COLUMNS = { "subscription_id", "user_id", "channel_id", "notify_url",
  "callback_data", "callback_data_json", "callback_data_xml",
  "notification_format", "resource_path", "all_movies", "client_correlator",
  "duration", "expires_at", "created_at" }

local INSERT = "INSERT INTO movie_subscriptions (" .. table.concat(COLUMNS, ", ")
  .. ") VALUES (" .. string.rep("?", #COLUMNS, ", ") .. ")"

-- The columns qualified by "s.", and the end of the channel: a
-- subscription lives no longer than its channel, even while the channel
-- expiry timer has not yet removed a channel past its end.
local SELECT = "SELECT s." .. table.concat(COLUMNS, ", s.")
  .. ", c.expires_at AS channel_expires_at"
  .. " FROM movie_subscriptions s JOIN channels c ON c.channel_id = s.channel_id"

local function failed(msg)
  return nil, errors.new("SVC2001"), msg
end

local function first(rows, err)
  if not rows then
    return failed(err)
  end
  return rows[1] or false
end

-- `ids` (a sequence of integers) as the JSON text json_each reads.
local function id_array(ids)
  local list = json.array()
  for i, id in ipairs(ids) do
    list[i] = id
  end
  return json.encode(list)
end

-- Inserts a subscription row (every column of COLUMNS) and one filter row
-- per id of `movie_ids` (none for an unfiltered one). Returns true. The
-- caller runs it in a transaction, so a failure leaves neither.
function M.insert(db, row, movie_ids)
  local args = {}
  for i, column in ipairs(COLUMNS) do
    args[i] = row[column]
  end
  local changes, err = db.exec(INSERT, table.unpack(args, 1, #COLUMNS))
  if not changes then
    return failed(err)
  end
  if movie_ids and #movie_ids > 0 then
    changes, err = db.exec("INSERT INTO movie_subscription_filter"
      .. " (movie_id, subscription_id) SELECT value, ? FROM json_each(?)",
      row.subscription_id, id_array(movie_ids))
    if not changes then
      return failed(err)
    end
  end
  return true
end

-- The row of subscription `id` owned by `user_id`, live or not; false when
-- there is none. Asking with the wrong user finds nothing: users are
-- isolated, as for channels.
function M.get(db, user_id, id)
  return first(db.query(SELECT .. " WHERE s.subscription_id = ? AND s.user_id = ?",
    id, user_id))
end

-- The row `user_id` created with `correlator`, live or not; false when none.
function M.by_correlator(db, user_id, correlator)
  return first(db.query(SELECT .. " WHERE s.user_id = ? AND s.client_correlator = ?",
    user_id, correlator))
end

-- The live subscriptions of `user_id` at `now` (their own end and their
-- channel's after it), in the order they were created (rowid, as
-- nc/store.list explains).
function M.list(db, user_id, now)
  local rows, err = db.query(SELECT .. " WHERE s.user_id = ? AND s.expires_at > ?"
    .. " AND c.expires_at > ? ORDER BY s.rowid", user_id, now, now)
  if not rows then
    return failed(err)
  end
  return rows
end

-- How many subscriptions of `user_id` are live at `now`: exactly those
-- M.list would return, so the cap on them (policy
-- max_subscriptions_per_user) counts what the user can see. One whose
-- own end or whose channel's end has passed does not count, whether or
-- not a timer has removed it yet.
function M.count_live(db, user_id, now)
  local rows, err = db.query("SELECT count(*) AS n FROM movie_subscriptions s"
    .. " JOIN channels c ON c.channel_id = s.channel_id"
    .. " WHERE s.user_id = ? AND s.expires_at > ? AND c.expires_at > ?",
    user_id, now, now)
  if not rows then
    return failed(err)
  end
  return rows[1].n
end

-- The movie ids of subscription `id`'s filter, ascending; empty for an
-- unfiltered one.
function M.filter(db, id)
  local rows, err = db.query("SELECT movie_id FROM movie_subscription_filter"
    .. " WHERE subscription_id = ? ORDER BY movie_id", id)
  if not rows then
    return failed(err)
  end
  local ids = {}
  for i, row in ipairs(rows) do
    ids[i] = math.tointeger(row.movie_id)
  end
  return ids
end

-- The filters of every subscription of `user_id`: subscription_id -> movie
-- ids ascending, in one query for a whole list.
function M.filters_of_user(db, user_id)
  local rows, err = db.query("SELECT f.subscription_id, f.movie_id"
    .. " FROM movie_subscription_filter f"
    .. " JOIN movie_subscriptions s ON s.subscription_id = f.subscription_id"
    .. " WHERE s.user_id = ? ORDER BY f.subscription_id, f.movie_id", user_id)
  if not rows then
    return failed(err)
  end
  local filters = {}
  for _, row in ipairs(rows) do
    local ids = filters[row.subscription_id]
    if not ids then
      ids = {}
      filters[row.subscription_id] = ids
    end
    ids[#ids + 1] = math.tointeger(row.movie_id)
  end
  return filters
end

-- The ids of `ids` that name no movie, ascending; empty when all exist.
function M.missing_movies(db, ids)
  local rows, err = db.query("SELECT j.value AS movie_id FROM json_each(?) j"
    .. " WHERE NOT EXISTS (SELECT 1 FROM movies m WHERE m.movie_id = j.value)"
    .. " ORDER BY j.value", id_array(ids))
  if not rows then
    return failed(err)
  end
  local missing = {}
  for i, row in ipairs(rows) do
    missing[i] = math.tointeger(row.movie_id)
  end
  return missing
end

-- Deletes subscription `id` and (ON DELETE CASCADE) its filter rows.
-- Returns true, or false when it was already gone.
function M.delete(db, id)
  local changes, err = db.exec("DELETE FROM movie_subscriptions"
    .. " WHERE subscription_id = ?", id)
  if not changes then
    return failed(err)
  end
  return changes == 1
end

-- The ids of every subscription whose own end is at or before `now`,
-- soonest first. (One whose channel ended goes with the channel.)
function M.expired(db, now)
  local rows, err = db.query("SELECT subscription_id FROM movie_subscriptions"
    .. " WHERE expires_at <= ? ORDER BY expires_at", now)
  if not rows then
    return failed(err)
  end
  local ids = {}
  for i, row in ipairs(rows) do
    ids[i] = row.subscription_id
  end
  return ids
end

-- The earliest expires_at of any subscription, or false when there is none.
function M.next_expiry(db)
  local rows, err = db.query("SELECT min(expires_at) AS t FROM movie_subscriptions")
  if not rows then
    return failed(err)
  end
  local t = rows[1] and rows[1].t
  return t ~= nil and tonumber(t) or false
end

return M
