-- Shared set-up for the nc/ specs: a fake core (spec/support/fake_core)
-- with foreign keys on, as the real core has them (core/db.c), a fake
-- core.timer driven by the fake clock, a fake core.hub
-- (spec/support/fake_hub) and the area's ctx.
--
--   local fixture = require("nc.fixture")
--   local f = fixture.new({ config = { channel_lifetime_min = 1 } })
--   f.ctx      -- db, now, log, random_id, public_url, policy, expiry, hub
--   f.core     -- the fake core (set_time, advance, logs)
--   f.timer    -- after, every, cancel, pending(), and f.advance(seconds)
--   f.hub      -- the fake hub (opts.hub = false leaves ctx.hub nil)
--   f.close()
local fake_core = require("support.fake_core")
local fake_hub = require("support.fake_hub")
local policy = require("nc.policy")
local expiry = require("nc.expiry")

local M = {}

M.T0 = 1764331200.0 -- 2025-11-28T12:00:00.000Z

-- A core.timer stand-in on the fake clock: timers fire only when the spec
-- advances time past them, in due order.
function M.timer(core)
  local t = { timers = {}, next_id = 0, fired = 0 }
  function t.after(ms, fn)
    assert(math.type(ms) == "integer" and ms >= 0, "bad ms " .. tostring(ms))
    t.next_id = t.next_id + 1
    t.timers[t.next_id] = { due = core.now() + ms / 1000, fn = fn, ms = ms }
    return t.next_id
  end
  function t.every(ms, fn)
    assert(math.type(ms) == "integer" and ms >= 1, "bad ms " .. tostring(ms))
    t.next_id = t.next_id + 1
    t.timers[t.next_id] = { due = core.now() + ms / 1000, fn = fn, ms = ms, every = true }
    return t.next_id
  end
  function t.cancel(id)
    if t.timers[id] then
      t.timers[id] = nil
      return true
    end
    return nil, "closed"
  end
  -- The pending timers as { id, due, ms }, soonest first.
  function t.pending()
    local list = {}
    for id, timer in pairs(t.timers) do
      list[#list + 1] = { id = id, due = timer.due, ms = timer.ms }
    end
    table.sort(list, function(a, b) return a.due < b.due end)
    return list
  end
  -- Moves the clock by dt seconds, firing each timer due on the way at
  -- its own time.
  function t.advance(dt)
    local target = core.now() + dt
    while true do
      local soonest = t.pending()[1]
      if not soonest or soonest.due > target then
        break
      end
      core.set_time(math.max(core.now(), soonest.due))
      local timer = t.timers[soonest.id]
      if timer.every then
        -- Rescheduled before it runs, so that it may cancel itself.
        timer.due = timer.due + timer.ms / 1000
      else
        t.timers[soonest.id] = nil
      end
      t.fired = t.fired + 1
      timer.fn()
    end
    core.set_time(target)
  end
  return t
end

function M.new(opts)
  opts = opts or {}
  local core = fake_core.new({ seed = false, now = opts.now or M.T0,
    public_url = opts.public_url })
  assert(core.db.exec("PRAGMA foreign_keys = ON"))
  local timer = M.timer(core)
  local ctx = fake_core.ctx(core)
  ctx.config = opts.config or {}
  ctx.policy = policy.from_config(ctx.config)
  if opts.timer ~= false then
    ctx.timer = timer
    ctx.expiry = expiry.new(ctx, timer)
  end
  local hub = fake_hub.new()
  if opts.hub ~= false then
    ctx.hub = hub
  end
  local f = { core = core, ctx = ctx, timer = timer, hub = hub }
  f.advance = timer.advance
  function f.close()
    core.db.close()
  end
  -- Rows of a table, for checks on what is stored.
  function f.rows(sql, ...)
    return assert(core.db.query(sql, ...))
  end
  function f.count(tbl)
    return f.rows("SELECT count(*) AS n FROM " .. tbl)[1].n
  end
  return f
end

return M
