-- Ends rows at the end of their life: channels (nc/expiry.lua) and movie
-- subscriptions (movies/subscriptions/expiry.lua) both use this scheduler
-- over their own table.
--
-- One core.timer.after at a time, set for the earliest expires_at in the
-- table: no polling while nothing is due, however many rows there are.
-- When it fires it removes every row due and sets itself for the next one.
-- A new or refreshed row that ends before the timer is due moves it
-- earlier (note); one that ends later needs nothing, and a deleted or
-- extended row at most makes the timer fire once for nothing, after which
-- it re-reads the table. On start the table is read, so rows keep their
-- stored expiry across restarts.
--
-- The timer is a convenience, not the guarantee: every access checks
-- expires_at itself, so a late timer never lets an expired row answer.
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

-- A scheduler for ctx (db, now, log) using `timer` (core.timer: after,
-- cancel). `rows` says what expires:
--   label            for log lines ("channel expiry")
--   remove_expired   fn(ctx) -> count | nil, err, detail
--   next_expiry      fn(db) -> expires_at | false (none) | nil, err, detail
-- With no timer (a spec's fake core without one) nothing is scheduled and
-- only access checks expire.
function M.new(ctx, timer, rows)
  return setmetatable({ ctx = ctx, timer = timer, rows = rows, id = nil, due = nil },
    Expiry)
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

-- Tells the scheduler a row now ends at `expires_at`.
function Expiry:note(expires_at)
  if self.due == nil or expires_at < self.due then
    self:set(expires_at)
  end
end

local function failed(self, err, detail)
  local ctx = self.ctx
  ctx.log("error", self.rows.label .. ": " .. tostring(detail or err.id))
  self:set(ctx.now() + M.RETRY_MS / 1000)
end

-- Removes every row due now and sets the timer for the next one.
function Expiry:run()
  local ctx = self.ctx
  local n, err, detail = self.rows.remove_expired(ctx)
  if not n then
    return failed(self, err, detail)
  end
  if n > 0 then
    ctx.log("debug", string.format("%s: removed %d", self.rows.label, n))
  end
  local next_due
  next_due, err, detail = self.rows.next_expiry(ctx.db)
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
