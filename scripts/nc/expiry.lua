-- Ends channels at the end of their lifetime (OMA NC 5.2.2.2
-- channelLifetime; API.md 2: a channel past its lifetime is gone, with
-- everything queued for it).
--
-- One core.timer.after at a time, set for the earliest expires_at in the
-- table: no polling while nothing is due, however many channels there
-- are. When it fires it removes every channel due and sets itself for the
-- next one. A new or refreshed channel that ends before the timer is due
-- moves it earlier (note); one that ends later needs nothing, and a
-- deleted or extended channel at most makes the timer fire once for
-- nothing, after which it re-reads the table. On start the table is read,
-- so channels keep their stored expiry across restarts.
--
-- The timer is a convenience, not the guarantee: every access checks
-- expires_at itself (nc/channels.lua find), so a late timer never lets an
-- expired channel answer.
local channels = require("nc.channels")
local store = require("nc.store")

local M = {}

-- The timer runs on the loop's monotonic clock, expires_at on the wall
-- clock (core.now). Waking at least hourly bounds how long a wall-clock
-- step backwards can keep expired rows in the table, at one query an hour.
M.MAX_DELAY_MS = 3600 * 1000
-- Slack after the due time, so the timer does not fire a millisecond
-- early (timer and clock round differently) and find nothing to do.
M.SLACK_MS = 5
-- After a storage failure, try again in this long rather than never.
M.RETRY_MS = 10 * 1000

local Expiry = {}
Expiry.__index = Expiry

-- A scheduler for ctx (db, now, log, policy, on_channel_removed) using
-- `timer` (core.timer: after, cancel). With no timer (a spec's fake core
-- without one) nothing is scheduled and only access checks expire.
function M.new(ctx, timer)
  return setmetatable({ ctx = ctx, timer = timer, id = nil, due = nil }, Expiry)
end

local function delay_ms(due, now)
  local ms = math.ceil((due - now) * 1000) + M.SLACK_MS
  if ms < 0 then
    ms = 0
  elseif ms > M.MAX_DELAY_MS then
    ms = M.MAX_DELAY_MS
  end
  return math.tointeger(ms)
end

-- Sets the one timer to fire at wall-clock time `due` (replacing any).
function Expiry:set(due)
  if not self.timer then
    return
  end
  if self.id then
    self.timer.cancel(self.id)
    self.id = nil
  end
  local ms = delay_ms(due, self.ctx.now())
  self.due = due
  self.id = self.timer.after(ms, function()
    self.id, self.due = nil, nil
    self:run()
  end)
end

-- Tells the scheduler a channel now ends at `expires_at`.
function Expiry:note(expires_at)
  if self.due == nil or expires_at < self.due then
    self:set(expires_at)
  end
end

-- Removes every channel due now and sets the timer for the next one.
function Expiry:run()
  local ctx = self.ctx
  local n, err, detail = channels.remove_expired(ctx)
  if not n then
    ctx.log("error", "channel expiry: " .. tostring(detail or err.id))
    self:set(ctx.now() + M.RETRY_MS / 1000)
    return
  end
  if n > 0 then
    ctx.log("debug", string.format("channel expiry: removed %d channel(s)", n))
  end
  local next_due
  next_due, err, detail = store.next_expiry(ctx.db)
  if next_due == nil then
    ctx.log("error", "channel expiry: " .. tostring(detail or err.id))
    self:set(ctx.now() + M.RETRY_MS / 1000)
  elseif next_due then
    self:set(next_due)
  end
end

-- Stops the timer (for specs; the core stops every timer at shutdown).
function Expiry:stop()
  if self.id and self.timer then
    self.timer.cancel(self.id)
  end
  self.id, self.due = nil, nil
end

return M
