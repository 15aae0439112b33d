-- Long polling (OMA NC 6.3, C.2, D.12-D.15; API.md 2, "Long polling"):
-- a POST on the channelURL of a LongPolling channel answers at once with
-- the notifications waiting, or is parked in the core (res.park) until
-- one arrives or maxWaitTime passes.
--
-- The core holds at most one parked request per key (the channel id) and
-- answers it with core.hub.answer; what this module remembers of the
-- parked poll is only what an answer needs (its format, path and
-- maxNotifications). core.hub.held(key) is the truth about whether it is
-- still there: a timeout or a client that went away is reported by
-- app.gone, possibly after a newer poll took the key.
--
-- Notifications leave the outbox only when the answer holding them was
-- written (app.written(token, true)); until then they are "in flight" and
-- no other poll gets them. An answer that never reached its client
-- (written false) puts them back, first in line for the next poll.
local errors = require("codec.errors")
local rep = require("codec.representation")
local request = require("http.request")
local channels = require("nc.channels")
local outbox = require("nc.outbox")

local M = {}

local Poll = {}
Poll.__index = Poll

-- A poller for ctx (db, now, log, policy, and hub: core.hub, nil when the
-- core has none, in which case parked polls simply time out) issuing
-- tokens from `tokens` (nc/tokens.lua).
function M.new(ctx, tokens)
  return setmetatable({
    ctx = ctx,
    tokens = tokens,
    -- channel id -> { format, path, max } of the poll parked for it.
    parked = {},
    -- channel id -> { [seq] = token } of notifications in flight.
    inflight = {},
  }, Poll)
end

local function log(ctx, fmt, ...)
  ctx.log("info", "long poll " .. string.format(fmt, ...))
end

local function held(ctx, key)
  return ctx.hub and ctx.hub.held(key)
end

-- The longPollingRequestParameters of `req` (5.2.2.9: empty in this
-- version), or nil and the error: SVC0002 naming the element for anything
-- else, SVC3002 for a media type other than JSON, XML or a form (C.2).
-- Accepted: no body; JSON {"longPollingRequestParameters": {} | null}
-- (D.12) or {}; XML <nc:longPollingRequestParameters/> (6.3.5.1); the form
-- "longPollingRequestParameters=" and its C.2 spelling
-- "longPollingRequestParmeters=" (codec/form).
function M.decode(req)
  local body = req.body or ""
  local media = request.media_type(req.headers and req.headers["content-type"])
  -- An empty JSON object says "no parameters" as well as an empty body.
  if media == rep.JSON and body:match("^%s*{%s*}%s*$") then
    return {}
  end
  return rep.decode(req, "longPollingRequestParameters", { form = true })
end

-- How many notifications one answer may hold, and how long a poll waits:
-- the channel's granted values, capped by today's policy (a restart with a
-- stricter config applies to channels granted before it).
local function max_notifications(ctx, row)
  return math.min(row.max_notifications, ctx.policy.max_notifications_max)
end

local function max_wait_time(ctx, row)
  return math.min(row.max_wait_time or 0, ctx.policy.max_wait_time_max)
end

-- Takes up to `max` notifications of `channel_id` not in flight, as a
-- notificationList value in `format`, registering them in flight under a
-- new token. Returns value, n, token (token nil when n is 0), or nil,
-- err, detail.
function Poll:take(channel_id, max, format)
  local ctx = self.ctx
  local inflight = self.inflight[channel_id]
  local rows, err, detail = outbox.pending(ctx, channel_id, { limit = max, skip = inflight })
  if not rows then
    return nil, err, detail
  end
  local value, held_rows, bad = outbox.list(format, rows)
  if #bad > 0 then
    -- Never expected (see nc/outbox.lua); dropping beats blocking the
    -- channel behind a notification no answer can carry.
    ctx.log("error", string.format("long poll %s: dropped %d notification(s) that cannot be written in %s",
      channels.label(channel_id), #bad, format))
    outbox.settle(ctx, channel_id, outbox.seqs(bad))
  end
  if #held_rows == 0 then
    return value, 0
  end
  local seqs = outbox.seqs(held_rows)
  local token = self.tokens:issue({ owner = "poll", channel_id = channel_id, seqs = seqs })
  inflight = inflight or {}
  self.inflight[channel_id] = inflight
  for _, seq in ipairs(seqs) do
    inflight[seq] = token
  end
  return value, #seqs, token
end

-- Ends the poll parked for `channel_id`, if any, with `res` (OMA NC 5:
-- "the server SHOULD terminate the first request with an appropriate
-- error"). Returns true when one was answered.
function Poll:finish(channel_id, res, token)
  local p = self.parked[channel_id]
  self.parked[channel_id] = nil
  if not p or held(self.ctx, channel_id) ~= "parked" then
    return false
  end
  return self.ctx.hub.answer(channel_id, res, token) == true
end

-- A poll on the live LongPolling channel `row`, answered in `format` (the
-- caller negotiated it and checked the channel). Returns the response, or
-- false when the channel went meanwhile (the caller's 404), or nil, err,
-- detail (err the OMA error to answer, detail what to log).
function Poll:handle(req, row, format)
  local ctx = self.ctx
  local id = row.channel_id
  local _, err = M.decode(req)
  if err then
    return nil, err
  end
  -- 6.3, API.md 2: each poll restarts the lifetime with the granted one.
  local granted, detail
  granted, err, detail = channels.refresh(ctx, row, row.lifetime)
  if granted == nil then
    return nil, err, detail
  elseif not granted then
    return false
  end

  local older = self.parked[id]
  if older and self:finish(id, rep.error_response(errors.new("SVC1012"), older.format)) then
    -- OMA NC 5 and 7.1.1: a second poll ends the first with 409.
    log(ctx, "%s: ended with 409 SVC1012, a newer poll took over", channels.label(id))
  end

  local max = max_notifications(ctx, row)
  local value, n, token = self:take(id, max, format)
  if not value then
    local take_err, take_detail = n, token
    return nil, take_err, take_detail
  end
  local res = rep.response(200, format, "notificationList", value)
  if n > 0 then
    res.token = token
    log(ctx, "%s: answered with %d notification(s)", channels.label(id), n)
    return res
  end
  local wait = max_wait_time(ctx, row)
  if wait == 0 then
    -- 5.2.2.6 maxWaitTime 0: answer at once, empty when there is nothing.
    log(ctx, "%s: answered with 0 notification(s)", channels.label(id))
    return res
  end
  -- 6.3.5.3 / D.14: what the core sends when nothing came in time is a
  -- 200 with an empty notificationList.
  res.park = { key = id, timeout_ms = math.tointeger(wait * 1000) }
  self.parked[id] = { format = format, path = req.path, max = max }
  log(ctx, "%s: parked for %d s", channels.label(id), wait)
  return res
end

-- Notifications were stored for `channel_id`: answers its parked poll, if
-- one is there and something not in flight is waiting.
function Poll:notify(channel_id)
  local ctx = self.ctx
  local p = self.parked[channel_id]
  if not p then
    return
  end
  if held(ctx, channel_id) ~= "parked" then
    self.parked[channel_id] = nil
    return
  end
  local value, n, token = self:take(channel_id, p.max, p.format)
  if not value then
    -- The rows stay; the poll gets them at the next notification, or
    -- times out and the client polls again.
    local err, detail = n, token
    ctx.log("error", string.format("long poll %s: %s", channels.label(channel_id),
      tostring(detail or err.id)))
    return
  end
  if n == 0 then
    return
  end
  if self:finish(channel_id, rep.response(200, p.format, "notificationList", value), token) then
    log(ctx, "%s: answered with %d notification(s)", channels.label(channel_id), n)
  else
    self:release(self.tokens:take(token))
  end
end

-- Puts the notifications of a token entry back in line.
function Poll:release(entry)
  local inflight = entry and self.inflight[entry.channel_id]
  if not inflight then
    return
  end
  for _, seq in ipairs(entry.seqs) do
    inflight[seq] = nil
  end
  if next(inflight) == nil then
    self.inflight[entry.channel_id] = nil
  end
end

-- app.written for an answer of ours. Written: its rows are settled
-- already (nc/delivery.lua); lost: they are due again, at once if a poll
-- is waiting.
function Poll:written(entry, ok)
  self:release(entry)
  if not ok then
    self:notify(entry.channel_id)
  end
end

-- The channel was deleted or expired (`reason`, nc/channels.lua): a
-- parked poll gets the 404 any request for it would get now (API.md 2).
function Poll:removed(channel_id, reason)
  self.inflight[channel_id] = nil
  local p = self.parked[channel_id]
  if p and self:finish(channel_id,
      rep.error_response(errors.new("SVC3000", p.path), p.format)) then
    log(self.ctx, "%s: ended with 404, channel %s", channels.label(channel_id), reason or "deleted")
  end
end

-- app.gone for a parked request (timeout, peer, stopping, ...). The key
-- may hold a newer poll by now, which keeps its state. Returns true when
-- this was a poll of ours.
function Poll:gone(key, id, why)
  if not self.parked[key] then
    return false
  end
  if held(self.ctx, key) ~= "parked" then
    self.parked[key] = nil
  end
  log(self.ctx, "%s: ended (%s)", channels.label(key), tostring(why))
  return true
end

return M
