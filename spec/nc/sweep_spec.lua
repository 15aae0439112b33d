local fixture = require("nc.fixture")
local channels = require("nc.channels")
local store = require("nc.store")
local sweep = require("nc.sweep")

describe("nc.sweep", function()
  local f, ctx, ch, saved_step
  before_each(function()
    f = fixture.new()
    ctx = f.ctx
    ch = assert(channels.create(ctx, "tel:+1", { channel_type = "WebSockets" }))
    saved_step = sweep.STEP
  end)
  after_each(function()
    sweep.STEP = saved_step
    f.close()
  end)

  local PIECES = { json = { "{", "", "}" }, xml = { "<a>", "", "</a>" } }

  -- A template, with `rows` fan-out rows of `ch` referring to it.
  local function template(rows)
    local id = assert(store.add_template(ctx.db, PIECES, ctx.now()))
    for _ = 1, rows do
      assert(ctx.db.exec("INSERT INTO outbox (channel_id, root, format, template_id, fill_1,"
        .. " fill_2, created_at) VALUES (?, 'a', 'json', ?, '', '', ?)",
        ch.channel_id, id, ctx.now()))
    end
    return id
  end

  -- The sweep's pending timers (the channel's expiry timer is another).
  local function sweep_timers()
    local n = 0
    for _, t in ipairs(f.timer.pending()) do
      if t.ms == sweep.INTERVAL_MS or t.ms == sweep.STEP_GAP_MS then
        n = n + 1
      end
    end
    return n
  end

  local function templates()
    local ids = {}
    for _, r in ipairs(f.rows("SELECT template_id FROM outbox_templates ORDER BY 1")) do
      ids[#ids + 1] = r.template_id
    end
    return ids
  end

  it("runs a pass at start, then one every INTERVAL_MS", function()
    template(0)
    local kept = template(1)
    local s = sweep.new(ctx, f.timer)
    s:start()
    assert.same({ kept }, templates())
    assert.equal(1, #f.core.logged("debug", "outbox template sweep: deleted 1 in 1 step(s)"))
    -- Starting twice sets no second timer.
    s:start()
    assert.equal(1, sweep_timers())
    template(0)
    f.advance(sweep.INTERVAL_MS / 1000 - 0.001)
    assert.equal(2, #templates())
    f.advance(0.001)
    assert.same({ kept }, templates())
  end)

  it("goes through many templates in steps with the loop free between them", function()
    sweep.STEP = 2
    local kept = {}
    for i = 1, 7 do
      local id = template(i % 3 == 0 and 1 or 0)
      if i % 3 == 0 then
        kept[#kept + 1] = id
      end
    end
    local s = sweep.new(ctx, f.timer)
    s:start()
    -- The first step ran at once (the first two templates, both unused);
    -- each next one waits STEP_GAP_MS.
    assert.equal(5, #templates())
    local fired = f.timer.fired
    f.advance(0.01)
    assert.same(kept, templates())
    -- Steps 2, 3 and 4 (7 templates, 2 a step: the fourth finds the last).
    assert.equal(3, f.timer.fired - fired)
    assert.equal(1, #f.core.logged("debug", "deleted 5 in 4 step(s)"))
    -- A new pass begins only at the next interval.
    assert.equal(1, sweep_timers())
  end)

  it("logs a storage failure and tries again at the next pass", function()
    template(0)
    local s = sweep.new(ctx, f.timer)
    ctx.db.fail_with("disk I/O error")
    s:start()
    ctx.db.fail_with(nil)
    assert.equal(1, #f.core.logged("error", "outbox template sweep: disk I/O error"))
    assert.equal(1, #templates())
    f.advance(sweep.INTERVAL_MS / 1000)
    assert.same({}, templates())
  end)

  it("runs a whole pass on demand, without a timer", function()
    sweep.STEP = 2
    for _ = 1, 5 do
      template(0)
    end
    local kept = template(2)
    local s = sweep.new(ctx, nil)
    s:start() -- nothing to schedule with
    assert.equal(6, #templates())
    assert.equal(5, s:run())
    assert.same({ kept }, templates())
    assert.equal(0, s:run())
    ctx.db.fail_with("disk I/O error")
    local n, err, detail = s:run()
    ctx.db.fail_with(nil)
    assert.is_nil(n)
    assert.equal("SVC2001", err.id)
    assert.equal("disk I/O error", detail)
  end)

  it("is started by the nc area with the expiry timer", function()
    local api = require("nc.api")
    local app_ctx = { db = ctx.db, now = ctx.now, log = ctx.log, random_id = ctx.random_id,
      timer = f.timer, config = {}, public_url = "http://nc.example:8080" }
    template(0)
    api.start(app_ctx)
    assert.same({}, templates())
    assert.is_truthy(api.context(app_ctx).sweep.every)
  end)
end)
