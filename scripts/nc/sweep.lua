-- Deletes outbox templates no row refers to any more
-- (sql/005_outbox_templates.sql): a movie fan-out stores its text once as
-- a template, and once every row of it has been delivered, or has gone
-- with its channel (deleted, expired), the template is of no use.
--
-- Nothing tells the template when its last row goes: rows leave one by
-- one as their output is written (nc/delivery.lua), or by the thousand in
-- a cascade, and counting them down would put a write on every one of
-- those deletes. Instead a timer looks at every template now and then, and
-- keeps the ones a row still refers to (one index probe each,
-- nc/store.lua sweep_templates). A template left over until the next pass
-- costs a few kilobytes of disk and nothing else: delivery never reads a
-- template that no row refers to.
--
-- A pass goes through the templates in steps of at most STEP templates,
-- with the loop free between steps, so a pass over many templates in use
-- (one per change whose notifications are not all delivered yet) never
-- holds the loop for long.
local store = require("nc.store")

local M = {}

-- Time between passes. Orphaned templates wait this long at most (plus
-- the pass itself); the pass costs one query when there are none.
M.INTERVAL_MS = 60 * 1000

-- Templates looked at per step: one probe of outbox_template each
-- (spec/nc/store_spec.lua checks the query plan), and a delete with its
-- pages for each unused one. Measured (SQLite 3.40, 2-vCPU VM, 5,000
-- templates, 50,000 rows): about 0.2 ms per 100 templates looked at, and
-- 10 us per template deleted, so a step stays near 2 ms at worst.
M.STEP = 200

-- Pause between the steps of one pass; not 0, for the reason
-- nc/delivery.lua gives for SLICE_GAP_MS.
M.STEP_GAP_MS = 1

local Sweep = {}
Sweep.__index = Sweep

-- A sweeper for ctx (db, now, log) on `timer` (core.timer: after, every,
-- cancel). Without a timer (a spec's fake core) nothing is scheduled and
-- passes run only when called.
function M.new(ctx, timer)
  -- every: the id of the pass timer once started; pass: the pass under
  -- way, { after, deleted, steps, started }.
  return setmetatable({ ctx = ctx, timer = timer, every = nil, pass = nil }, Sweep)
end

-- Starts the passes: one at once (templates left over when the server
-- stopped), then one every INTERVAL_MS.
function Sweep:start()
  if not self.timer or self.every then
    return
  end
  self.every = self.timer.every(M.INTERVAL_MS, function()
    self:begin()
  end)
  self:begin()
end

-- Begins a pass, unless one is under way.
function Sweep:begin()
  if self.pass then
    return
  end
  self.pass = { after = 0, deleted = 0, steps = 0, started = self.ctx.now() }
  self:step()
end

-- Runs one step of the pass under way, then schedules the next one or
-- ends the pass. A storage failure ends the pass; the next one tries
-- again.
function Sweep:step()
  local ctx, pass = self.ctx, self.pass
  local deleted, after, detail = store.sweep_templates(ctx.db, pass.after, M.STEP)
  pass.steps = pass.steps + 1
  if not deleted then
    self.pass = nil
    ctx.log("error", "outbox template sweep: " .. tostring(detail or after.id))
    return
  end
  pass.deleted = pass.deleted + deleted
  if after then
    pass.after = after
    self.timer.after(M.STEP_GAP_MS, function()
      self:step()
    end)
    return
  end
  self.pass = nil
  if pass.deleted > 0 then
    ctx.log("debug", string.format("outbox template sweep: deleted %d in %d step(s) over %.0f ms",
      pass.deleted, pass.steps, (ctx.now() - pass.started) * 1000))
  end
end

-- Runs a whole pass now, in steps but without pauses (specs, and a fake
-- core without timers). Returns the number deleted, or nil, err, detail.
function Sweep:run()
  local db = self.ctx.db
  local after, total = 0, 0
  repeat
    local deleted, next_after, detail = store.sweep_templates(db, after, M.STEP)
    if not deleted then
      return nil, next_after, detail
    end
    total = total + deleted
    after = next_after
  until not after
  return total
end

return M
