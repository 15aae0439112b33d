-- Ends movie subscriptions at the end of their duration (API.md 3:
-- duration behaves as a channel's lifetime; an expired subscription is
-- gone). The same scheme as nc/expiry.lua, over the movie_subscriptions
-- table: one core.timer.after at a time, set for the earliest expires_at;
-- when it fires it removes every subscription due and sets itself for the
-- next. A new subscription that ends sooner moves it earlier (note). On
-- start the table is read, so subscriptions keep their stored end across
-- restarts.
--
-- The timer is a convenience, not the guarantee: reads check expires_at
-- themselves (movies/subscriptions/model.lua find and list) and so does
-- the fan-out, so a late timer never lets an expired subscription answer
-- or be notified.
local model = require("movies.subscriptions.model")
local store = require("movies.subscriptions.store")

local M = {}

-- As nc/expiry.lua, for the same reasons: wake at least hourly (the timer
-- is monotonic, expires_at wall-clock), a little after the due time, and
-- retry after a storage failure rather than never.
M.MAX_DELAY_MS = 3600 * 1000
M.SLACK_MS = 5
M.RETRY_MS = 10 * 1000

local Expiry = {}
Expiry.__index = Expiry

-- A scheduler for ctx (db, now, log) using `timer` (core.timer: after,
-- cancel). With no timer (a spec's fake core without one) nothing is
-- scheduled and only the checks on access expire subscriptions.
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
  self.due = due
  self.id = self.timer.after(delay_ms(due, self.ctx.now()), function()
    self.id, self.due = nil, nil
    self:run()
  end)
end

-- Tells the scheduler a subscription now ends at `expires_at`.
function Expiry:note(expires_at)
  if self.due == nil or expires_at < self.due then
    self:set(expires_at)
  end
end

local function failed(self, err, detail)
  local ctx = self.ctx
  ctx.log("error", "movie subscription expiry: " .. tostring(detail or err.id))
  self:set(ctx.now() + M.RETRY_MS / 1000)
end

-- Removes every subscription due now (model.remove_expired logs each)
-- and sets the timer for the next one.
function Expiry:run()
  local ctx = self.ctx
  local n, err, detail = model.remove_expired(ctx)
  if not n then
    return failed(self, err, detail)
  end
  local next_due
  next_due, err, detail = store.next_expiry(ctx.db)
  if next_due == nil then
    return failed(self, err, detail)
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
