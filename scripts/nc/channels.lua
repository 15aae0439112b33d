-- Notification channels as plain functions over normalised values (the
-- Lua tables codec/representation decodes to and encodes from): checking
-- a create request, granting its values, storing, finding, refreshing and
-- removing channels, and the representations of OMA NC 5.2.2.1, 5.2.2.2
-- and 5.2.2.14.
--
-- `ctx` carries what touches the outside (see app.lua): db, now,
-- random_id, public_url, plus policy (nc/policy.lua), and optionally
-- expiry (nc/expiry.lua, told of every new end of life) and
-- on_channel_removed(channel_id, reason) (the delivery side, which closes a
-- channel's WebSocket and answers its pending poll; reason is "deleted" or
-- "expired"). Nothing here reaches for `core` itself.
local errors = require("codec.errors")
local policy = require("nc.policy")
local store = require("nc.store")
local tx = require("nc.tx")
local urls = require("nc.urls")
local policy_values = require("policy_values")

local M = {}

-- OMA NC 5.2.3.1. The types this server serves, in the order POL1023's
-- second variable lists them.
M.SERVED = { "LongPolling", "WebSockets" }
local SERVED = { LongPolling = true, WebSockets = true }
local REFUSED = { OMAPush = true, NativeChannel = true }

-- The channelData elements a client may send per type (5.2.2.6,
-- 5.2.2.10); channelURL is the server's to fill.
local CLIENT_DATA = {
  LongPolling = { maxNotifications = true, maxWaitTime = true },
  WebSockets = { maxNotifications = true },
}

-- The most characters a clientCorrelator or applicationTag may have. OMA
-- NC 5.2.2.2 gives them no length (xsd:string), but the server stores both
-- with the channel, indexes the correlator and returns both in every
-- representation: a user's list repeats them once per channel, so a 1 MB
-- correlator would make each list megabytes long. Clients use counters,
-- UUIDs (36 characters) or application names; 256 leaves them room.
M.MAX_TAG_CHARS = 256

local function invalid(name)
  return nil, errors.new("SVC0002", name)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = tostring(k)
  end
  table.sort(keys)
  return keys
end

local function is_int(v)
  return math.type(v) == "integer"
end

---------------------------------------------------------------------------
-- Checking requests
---------------------------------------------------------------------------

-- Checks the meaning of a decoded notificationChannel (the shape is
-- codec/representation's job) and returns what the client asked for:
--   { channel_type, client_correlator, application_tag, lifetime,
--     max_notifications, max_wait_time }   (nil where not asked)
-- or nil and the error to answer:
--   400 SVC0002 naming the element for a missing or unknown channelType,
--       an element the server fills (channelURL, callbackURL,
--       resourceURL: 5.2.2.2 says they SHALL NOT be in the POST), data of
--       another channel type, a value out of range, or a clientCorrelator
--       or applicationTag longer than M.MAX_TAG_CHARS characters;
--   403 POL1023 for a type of 5.2.3.1 this server does not serve.
-- opts.form: the request was application/x-www-form-urlencoded, which
-- Appendix C does not offer for WebSockets channels.
function M.check_create(doc, opts)
  opts = opts or {}
  if type(doc) ~= "table" then
    return invalid("notificationChannel")
  end
  local channel_type = doc.channelType
  if type(channel_type) ~= "string" or channel_type == "" then
    return invalid("channelType")
  end
  local supported = table.concat(M.SERVED, ", ")
  if opts.form then
    supported = "LongPolling"
  end
  if REFUSED[channel_type] or (opts.form and channel_type == "WebSockets") then
    -- OMA NC 7.2.1: %1 the type asked for, %2 the ones we serve.
    return nil, errors.new("POL1023", channel_type, supported)
  end
  if not SERVED[channel_type] then
    return invalid("channelType")
  end
  for _, name in ipairs({ "callbackURL", "resourceURL" }) do
    if doc[name] ~= nil then
      return invalid(name)
    end
  end
  for _, name in ipairs({ "clientCorrelator", "applicationTag" }) do
    local v = doc[name]
    -- Characters, not bytes: the decoders have made sure it is UTF-8.
    if v ~= nil and (type(v) ~= "string" or (utf8.len(v) or #v) > M.MAX_TAG_CHARS) then
      return invalid(name)
    end
  end

  local values = {
    channel_type = channel_type,
    client_correlator = doc.clientCorrelator,
    application_tag = doc.applicationTag,
  }
  local lifetime = doc.channelLifetime
  if lifetime ~= nil then
    -- Zero or more: the policy clamps to its minimum; a negative
    -- duration means nothing.
    if not is_int(lifetime) or lifetime < 0 then
      return invalid("channelLifetime")
    end
    values.lifetime = lifetime
  end

  local data = doc.channelData
  -- Appendix C.1 puts maxNotifications at the top level of a form; a
  -- decoder that leaves it there is read the same way.
  if doc.maxNotifications ~= nil then
    data = data or {}
    if data.maxNotifications ~= nil then
      return invalid("maxNotifications")
    end
    local copy = {}
    for k, v in pairs(data) do
      copy[k] = v
    end
    copy.maxNotifications = doc.maxNotifications
    data = copy
  end
  if data ~= nil then
    if type(data) ~= "table" then
      return invalid("channelData")
    end
    local allowed = CLIENT_DATA[channel_type]
    for _, name in ipairs(sorted_keys(data)) do
      if not allowed[name] then
        return invalid("channelData." .. name)
      end
    end
    local n = data.maxNotifications
    if n ~= nil then
      if not is_int(n) or n < 1 then
        return invalid("channelData.maxNotifications")
      end
      values.max_notifications = n
    end
    local w = data.maxWaitTime
    if w ~= nil then
      if not is_int(w) or w < 0 then
        return invalid("channelData.maxWaitTime")
      end
      values.max_wait_time = w
    end
  end
  return values
end

-- Checks a decoded notificationChannelLifetime (PUT, 6.4.4). Returns the
-- requested lifetime (nil: none, so the default applies, 5.2.2.14) or
-- false and the error.
function M.check_lifetime(doc)
  if type(doc) ~= "table" then
    return false, errors.new("SVC0002", "notificationChannelLifetime")
  end
  local lifetime = doc.channelLifetime
  if lifetime ~= nil and (not is_int(lifetime) or lifetime < 0) then
    return false, errors.new("SVC0002", "channelLifetime")
  end
  return lifetime
end

---------------------------------------------------------------------------
-- Storage
---------------------------------------------------------------------------

-- Why a channel went, as on_channel_removed is told: its DELETE (6.2.6),
-- or the end of its lifetime (5.2.2.2 channelLifetime).
M.DELETED = "deleted"
M.EXPIRED = "expired"

-- Calls ctx.on_channel_removed for each id, once the rows are gone.
local function removed(ctx, ids, reason)
  if ctx.on_channel_removed then
    for _, id in ipairs(ids) do
      ctx.on_channel_removed(id, reason)
    end
  end
end

local function note_expiry(ctx, expires_at)
  if ctx.expiry then
    ctx.expiry:note(expires_at)
  end
end

-- How log lines name channel `channel_id`: its first characters only. The
-- id is the secret that lets one read a channel (API.md 2, "Identifiers"),
-- and logs are read by more people than should hold it; 8 characters (48
-- bits of 128) still tell channels apart in a log.
function M.label(channel_id)
  local id = tostring(channel_id)
  if #id > 8 then
    return id:sub(1, 8) .. "..."
  end
  return id
end

-- True while `row` is within its lifetime at time `now`.
function M.live(row, now)
  return row.expires_at > now
end

-- Whole seconds left of `row`'s lifetime, rounded up so a channel read
-- the moment it was granted 3600 s says 3600, and a live channel never
-- says 0.
function M.remaining(row, now)
  local left = math.ceil(row.expires_at - now)
  return left > 0 and math.tointeger(left) or 0
end

-- Creates a channel for `user_id` from checked `values`, or finds the one
-- this user created with the same clientCorrelator (API.md 2: a repeated
-- create answers with the first channel and creates nothing). Returns
-- row, true when created; row, false when found; nil, err, detail when
-- the store failed; nil and 403 POL0001 when the user already has
-- policy max_channels_per_user live channels (a repeat that finds its
-- channel is still answered: it creates nothing). One transaction: a
-- channel left over from an expired one with the same correlator is
-- removed first.
function M.create(ctx, user_id, values)
  local p = ctx.policy
  local now = ctx.now()
  local gone = {}
  local row, created, detail = tx.run(ctx.db, function()
    if values.client_correlator ~= nil then
      local old, err, msg = store.by_correlator(ctx.db, user_id, values.client_correlator)
      if old == nil then
        tx.abort(err, msg)
      end
      if old then
        if M.live(old, now) then
          return old, false
        end
        local ok
        ok, err, msg = store.delete(ctx.db, old.channel_id)
        if ok == nil then
          tx.abort(err, msg)
        end
        gone[#gone + 1] = old.channel_id
      end
    end
    local n, err, msg = store.count_live(ctx.db, user_id, now)
    if n == nil then
      tx.abort(err, msg)
    end
    local full = policy_values.beyond_user_limit(n, p.max_channels_per_user,
      "notification channels")
    if full then
      tx.abort(full)
    end
    local lifetime = policy.lifetime(p, values.lifetime)
    local new = {
      channel_id = ctx.random_id(),
      user_id = user_id,
      channel_type = values.channel_type,
      client_correlator = values.client_correlator,
      application_tag = values.application_tag,
      max_notifications = policy.max_notifications(p, values.max_notifications),
      max_wait_time = values.channel_type == "LongPolling"
        and policy.max_wait_time(p, values.max_wait_time) or nil,
      callback_id = ctx.random_id(),
      lifetime = lifetime,
      expires_at = now + lifetime,
      created_at = now,
    }
    local ok
    ok, err, msg = store.insert(ctx.db, new)
    if not ok then
      tx.abort(err, msg)
    end
    return new, true
  end)
  if row == nil then
    return nil, created, detail
  end
  removed(ctx, gone, M.EXPIRED)
  if created then
    note_expiry(ctx, row.expires_at)
  end
  return row, created
end

-- A row the store looked up, if it is still live; false when there was
-- none or it was past its end, in which case it is removed now. Passes a
-- store failure (nil, err, detail) through.
local function live_or_removed(ctx, row, err, detail)
  if row == nil then
    return nil, err, detail
  end
  if row and not M.live(row, ctx.now()) then
    local ok
    ok, err, detail = M.remove(ctx, row.channel_id, M.EXPIRED)
    if ok == nil then
      return nil, err, detail
    end
    return false
  end
  return row
end

-- The live channel `channel_id` of `user_id`, or false when there is none
-- (never was, deleted, expired, or another user's). A row found past its
-- end, because the expiry timer has not run yet, is removed here: an
-- expired channel is gone whether or not a timer was late.
-- nil, err, detail when the store failed.
function M.find(ctx, user_id, channel_id)
  return live_or_removed(ctx, store.get(ctx.db, user_id, channel_id))
end

-- As find, by the callbackId of the channel's callbackURL.
function M.find_by_callback(ctx, callback_id)
  return live_or_removed(ctx, store.by_callback(ctx.db, callback_id))
end

-- As find, by the channel id alone: for the delivery side, which knows an
-- open WebSocket by its hub key (the channel id) and not by its user.
function M.find_by_id(ctx, channel_id)
  return live_or_removed(ctx, store.by_id(ctx.db, channel_id))
end

-- The live channels of `user_id`, oldest first.
function M.list(ctx, user_id)
  return store.list(ctx.db, user_id, ctx.now())
end

-- Deletes channel `channel_id` with everything queued for it and tells
-- the delivery side why (`reason`: M.DELETED, the default, or M.EXPIRED).
-- Returns true, or false when it was already gone.
function M.remove(ctx, channel_id, reason)
  local ok, err, detail = store.delete(ctx.db, channel_id)
  if ok == nil then
    return nil, err, detail
  end
  if ok then
    removed(ctx, { channel_id }, reason or M.DELETED)
  end
  return ok
end

-- Removes every channel past its end at ctx.now(), in one transaction.
-- Returns the number removed, or nil, err, detail.
function M.remove_expired(ctx)
  local now = ctx.now()
  local ids, err, detail = tx.run(ctx.db, function()
    local ids, e, msg = store.expired(ctx.db, now)
    if not ids then
      tx.abort(e, msg)
    end
    for _, id in ipairs(ids) do
      local ok
      ok, e, msg = store.delete(ctx.db, id)
      if ok == nil then
        tx.abort(e, msg)
      end
    end
    return ids
  end)
  if not ids then
    return nil, err, detail
  end
  removed(ctx, ids, M.EXPIRED)
  return #ids
end

-- Restarts the lifetime of `row` with the lifetime granted for
-- `requested` (nil: the default, 5.2.2.14). Also what a long poll or a
-- connCheck does (API.md 2), with requested = row.lifetime. Returns the
-- granted lifetime, false when the channel is gone, or nil, err, detail.
function M.refresh(ctx, row, requested)
  local lifetime = policy.lifetime(ctx.policy, requested)
  local expires_at = ctx.now() + lifetime
  local ok, err, detail = store.set_lifetime(ctx.db, row.channel_id, lifetime, expires_at)
  if ok == nil then
    return nil, err, detail
  end
  if not ok then
    return false
  end
  row.lifetime, row.expires_at = lifetime, expires_at
  note_expiry(ctx, expires_at)
  return lifetime
end

---------------------------------------------------------------------------
-- Representations (normalised values for codec/representation)
---------------------------------------------------------------------------

-- The channelURL of `row` (5.2.2.6, 5.2.2.10).
function M.channel_url(public_url, row)
  if row.channel_type == "WebSockets" then
    return urls.websocket(public_url, row.user_id, row.channel_id)
  end
  return urls.long_poll(public_url, row.user_id, row.channel_id)
end

-- notificationChannel (5.2.2.2). channelLifetime is the granted lifetime
-- (the duration, as in the creation response); the remaining seconds are
-- the channelLifetime resource's (6.4.3).
function M.represent(public_url, row)
  local data = {
    channelURL = M.channel_url(public_url, row),
    maxNotifications = math.tointeger(row.max_notifications),
  }
  if row.channel_type == "LongPolling" then
    data.maxWaitTime = math.tointeger(row.max_wait_time)
  end
  return {
    clientCorrelator = row.client_correlator,
    applicationTag = row.application_tag,
    channelType = row.channel_type,
    channelData = data,
    channelLifetime = math.tointeger(row.lifetime),
    callbackURL = urls.callback(public_url, row.callback_id),
    resourceURL = urls.channel(public_url, row.user_id, row.channel_id),
  }
end

-- notificationChannelList (5.2.2.1) of `rows`, all of `user_id`.
function M.represent_list(public_url, user_id, rows)
  local items = {}
  for i, row in ipairs(rows) do
    items[i] = M.represent(public_url, row)
  end
  return {
    notificationChannel = items,
    resourceURL = urls.channels(public_url, user_id),
  }
end

-- notificationChannelLifetime (5.2.2.14).
function M.represent_lifetime(seconds)
  return { channelLifetime = math.tointeger(seconds) }
end

return M
