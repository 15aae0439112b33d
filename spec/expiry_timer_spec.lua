local expiry_timer = require("expiry_timer")

-- A fake core.timer that records what is pending and fires on demand.
local function fake_timer()
  local pending, next_id = {}, 0
  return {
    after = function(ms, fn)
      next_id = next_id + 1
      pending[next_id] = { ms = ms, fn = fn }
      return next_id
    end,
    cancel = function(id)
      pending[id] = nil
    end,
    pending = pending,
  }
end

describe("expiry_timer", function()
  local now, logs, removed, timer
  local function ctx()
    return { now = function() return now end, db = {},
      log = function(level, line) logs[#logs + 1] = level .. " " .. line end }
  end
  before_each(function()
    now, logs, removed, timer = 1000, {}, 0, fake_timer()
  end)

  it("keeps one timer at the earliest end and re-reads after firing", function()
    local next_due = 1060
    local e = expiry_timer.new(ctx(), timer, {
      label = "thing expiry",
      remove_expired = function() removed = removed + 1 return 2 end,
      next_expiry = function() return next_due end,
    })
    e:note(1030)
    e:note(1050) -- later: nothing changes
    local id, t = next(timer.pending)
    assert.equal(30 * 1000 + expiry_timer.SLACK_MS, t.ms)
    timer.pending[id] = nil
    now = 1030
    t.fn()
    assert.equal(1, removed)
    assert.same({ "debug thing expiry: removed 2" }, logs)
    local _, again = next(timer.pending)
    assert.equal(30 * 1000 + expiry_timer.SLACK_MS, again.ms)
  end)

  it("retries after a storage failure and caps the delay", function()
    local e = expiry_timer.new(ctx(), timer, {
      label = "thing expiry",
      remove_expired = function() return nil, { id = "SVC2001" }, "disk I/O error" end,
      next_expiry = function() return false end,
    })
    e:run()
    assert.same({ "error thing expiry: disk I/O error" }, logs)
    local _, t = next(timer.pending)
    assert.equal(expiry_timer.RETRY_MS + expiry_timer.SLACK_MS, t.ms)
    e:set(now + 10 * 86400)
    local _, long = next(timer.pending)
    assert.equal(expiry_timer.MAX_DELAY_MS, long.ms)
  end)
end)
