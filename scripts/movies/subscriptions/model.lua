-- Movie subscriptions as plain functions over checked values
-- (movies/subscriptions/validate.lua) and stored rows: creating one (with
-- clientCorrelator idempotency, the notifyURL and movie checks that need
-- the store, and the duration policy), finding, listing and removing them.
--
-- `ctx` carries what touches the outside (see app.lua): db, now, log,
-- random_id, public_url, plus policy (movies/subscriptions/policy.lua) and
-- optionally expiry (movies/subscriptions/expiry.lua, told of every new
-- end). Nothing here reaches for `core` itself.
--
-- A subscription is live while its own duration runs and its channel
-- lives. When the channel goes (DELETE or expiry), the foreign key's ON
-- DELETE CASCADE removes its subscriptions in the same statement; until
-- the channel expiry timer gets to a channel past its end, its
-- subscriptions answer 404 here all the same.
local errors = require("codec.errors")
local channels = require("nc.channels")
local nc_store = require("nc.store")
local nc_urls = require("nc.urls")
local tx = require("nc.tx")
local policy = require("movies.subscriptions.policy")
local represent = require("movies.subscriptions.represent")
local store = require("movies.subscriptions.store")
local urls = require("movies.subscriptions.urls")
local policy_values = require("policy_values")

local M = {}

-- Why a subscription went: its DELETE, or the end of its duration.
M.DELETED = "deleted"
M.EXPIRED = "expired"

local function invalid(name)
  return nil, errors.new("SVC0002", name)
end

-- How log lines name subscription `id`: its first 8 characters, as
-- nc/channels.label does for channel ids. A subscription id is less of a
-- secret than a channel's, but it is still what lets one delete it.
M.label = channels.label

-- True while `row` is within its duration and its channel within its
-- lifetime at `now`.
function M.live(row, now)
  return row.expires_at > now
    and (row.channel_expires_at == nil or row.channel_expires_at > now)
end

local function log_removed(ctx, ids, reason)
  for _, id in ipairs(ids) do
    ctx.log("info", string.format("movie subscription %s %s", M.label(id), reason))
  end
end

local function log_created(ctx, row, movie_ids)
  local movies = movie_ids and ("movies " .. table.concat(movie_ids, ", "))
    or "every movie"
  ctx.log("info", string.format("movie subscription %s created: channel %s,"
    .. " %s, %s notifications, %d s", M.label(row.subscription_id),
    channels.label(row.channel_id), movies, row.notification_format:upper(),
    row.duration))
end

-- The live channel of `user_id` whose callbackURL is `notify_url`, or nil
-- and 400 SVC0002 naming callbackReference.notifyURL: API.md 3 takes
-- nothing else (another server, another path, an unknown or expired
-- channel, another user's channel). The URL must be exactly the one the
-- channel was given (same scheme, host and spelling), since that is the
-- only URL this server hands out for it. A store failure is nil, err,
-- detail.
function M.channel_for(ctx, user_id, notify_url)
  local callback_id = nc_urls.callback_id(ctx.public_url, notify_url)
  if not callback_id then
    return invalid("callbackReference.notifyURL")
  end
  local row, err, detail = nc_store.by_callback(ctx.db, callback_id)
  if row == nil then
    return nil, err, detail
  end
  if not row or row.user_id ~= user_id or not channels.live(row, ctx.now())
      or nc_urls.callback(ctx.public_url, row.callback_id) ~= notify_url then
    return invalid("callbackReference.notifyURL")
  end
  return row
end

-- True when every id of `ids` names a movie, else nil and 400 SVC0002
-- naming filter.movieId (nil, err, detail for a store failure).
local function movies_exist(db, ids)
  local missing, err, detail = store.missing_movies(db, ids)
  if not missing then
    return nil, err, detail
  end
  if #missing > 0 then
    return invalid("filter.movieId")
  end
  return true
end

-- `value` itself, or (when it is nil) the end of the enclosing tx.run
-- with the failure err, detail, rolling back.
local function must(value, err, detail)
  if value == nil then
    tx.abort(err, detail)
  end
  return value
end

-- Creates a subscription for `user_id` from checked `values`, or finds the
-- live one this user created with the same clientCorrelator (API.md 3: a
-- repeated create creates nothing and answers with the first). Returns
--   row, true    created
--   row, false   found by its correlator
--   nil, err, detail   refused (400 for notifyURL or filter.movieId; 403
--                      POL0001 when the user already holds policy
--                      max_subscriptions_per_user live subscriptions) or
--                      the store failed
-- `row` carries `movie_ids`: its filter, ascending, or nil for every movie.
-- The correlator is looked up before the checks that read the store, so a
-- client retrying a create whose answer it lost gets its subscription
-- even if a movie of the filter has been deleted meanwhile, or the user
-- has reached the cap since: the repeat creates nothing. One transaction:
-- a dead subscription left with the same correlator is removed first, so
-- the UNIQUE (user_id, client_correlator) holds; a refusal rolls that
-- back too, so a refused create changes nothing.
function M.create(ctx, user_id, values)
  local now = ctx.now()
  local gone = {}
  local row, created, detail = tx.run(ctx.db, function()
    if values.client_correlator ~= nil then
      local old = must(store.by_correlator(ctx.db, user_id, values.client_correlator))
      if old then
        if M.live(old, now) then
          if tonumber(old.all_movies) ~= 1 then
            old.movie_ids = must(store.filter(ctx.db, old.subscription_id))
          end
          return old, false
        end
        must(store.delete(ctx.db, old.subscription_id))
        gone[#gone + 1] = old.subscription_id
      end
    end
    local channel = must(M.channel_for(ctx, user_id, values.notify_url))
    if values.movie_ids then
      must(movies_exist(ctx.db, values.movie_ids))
    end
    -- The cap comes after the 400s: those say the request itself is
    -- wrong and would stay wrong, so a client told 403 first could delete
    -- subscriptions to make room only to learn that.
    local live = must(store.count_live(ctx.db, user_id, now))
    local full = policy_values.beyond_user_limit(live, ctx.policy.max_subscriptions_per_user,
      "movie subscriptions")
    if full then
      tx.abort(full)
    end
    local id = ctx.random_id()
    local duration = policy.duration(ctx.policy, values.duration)
    local new = {
      subscription_id = id,
      user_id = user_id,
      channel_id = channel.channel_id,
      notify_url = values.notify_url,
      callback_data = values.callback_data,
      callback_data_json = represent.callback_data_json(values.callback_data),
      callback_data_xml = represent.callback_data_xml(values.callback_data),
      notification_format = values.notification_format,
      resource_path = urls.resource_path(user_id, id),
      all_movies = values.movie_ids and 0 or 1,
      client_correlator = values.client_correlator,
      duration = duration,
      expires_at = now + duration,
      created_at = now,
      channel_expires_at = channel.expires_at,
    }
    must(store.insert(ctx.db, new, values.movie_ids))
    new.movie_ids = values.movie_ids
    return new, true
  end)
  if row == nil then
    return nil, created, detail
  end
  log_removed(ctx, gone, M.EXPIRED)
  if created then
    log_created(ctx, row, row.movie_ids)
    if ctx.expiry then
      ctx.expiry:note(row.expires_at)
    end
  end
  return row, created
end

-- Removes subscription `id` and logs why (`reason`: M.DELETED, the
-- default, or M.EXPIRED). Returns true, or false when it was already gone.
function M.remove(ctx, id, reason)
  local ok, err, detail = store.delete(ctx.db, id)
  if ok == nil then
    return nil, err, detail
  end
  if ok then
    log_removed(ctx, { id }, reason or M.DELETED)
  end
  return ok
end

-- The live subscription `id` of `user_id` with its `movie_ids`, or false
-- when there is none (never was, deleted, expired, its channel gone, or
-- another user's). One found past its own end, because the expiry timer
-- has not run yet, is removed here: an expired subscription is gone
-- whether or not a timer was late. nil, err, detail when the store failed.
function M.find(ctx, user_id, id)
  local row, err, detail = store.get(ctx.db, user_id, id)
  if not row then
    return row, err, detail
  end
  local now = ctx.now()
  if row.expires_at <= now then
    local ok
    ok, err, detail = M.remove(ctx, id, M.EXPIRED)
    if ok == nil then
      return nil, err, detail
    end
    return false
  end
  if not M.live(row, now) then
    return false
  end
  if tonumber(row.all_movies) ~= 1 then
    row.movie_ids, err, detail = store.filter(ctx.db, id)
    if not row.movie_ids then
      return nil, err, detail
    end
  end
  return row
end

-- The live subscriptions of `user_id`, oldest first, and their filters
-- (subscription_id -> movie ids). nil, err, detail when the store failed.
function M.list(ctx, user_id)
  local rows, err, detail = store.list(ctx.db, user_id, ctx.now())
  if not rows then
    return nil, err, detail
  end
  local filters
  filters, err, detail = store.filters_of_user(ctx.db, user_id)
  if not filters then
    return nil, err, detail
  end
  return rows, filters
end

-- Removes every subscription past its own end at ctx.now(), in one
-- transaction, logging each. Returns the number removed, or nil, err,
-- detail.
function M.remove_expired(ctx)
  local now = ctx.now()
  local ids, err, detail = tx.run(ctx.db, function()
    local ids = must(store.expired(ctx.db, now))
    for _, id in ipairs(ids) do
      must(store.delete(ctx.db, id))
    end
    return ids
  end)
  if not ids then
    return nil, err, detail
  end
  log_removed(ctx, ids, M.EXPIRED)
  return #ids
end

return M
