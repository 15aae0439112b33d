local fixture = require("nc.fixture")
local channels = require("nc.channels")
local expiry = require("nc.expiry")
local store = require("nc.store")

local T0 = fixture.T0
local USER = "tel:+19585550100"

describe("nc.expiry", function()
  local f, ctx, removed, reasons
  before_each(function()
    f = fixture.new({ config = { channel_lifetime_min = 1 } })
    ctx = f.ctx
    removed = {}
    reasons = {}
    ctx.on_channel_removed = function(id, reason)
      removed[#removed + 1] = id
      reasons[#reasons + 1] = reason
    end
  end)
  after_each(function()
    f.close()
  end)

  local function create(lifetime, correlator)
    return channels.create(ctx, USER, { channel_type = "LongPolling",
      lifetime = lifetime, client_correlator = correlator })
  end

  it("sets no timer while there are no channels", function()
    ctx.expiry:run()
    assert.same({}, f.timer.pending())
  end)

  it("sets one timer, at the earliest end", function()
    create(100)
    create(10)
    create(1000)
    local pending = f.timer.pending()
    assert.equal(1, #pending)
    assert.equal(10 * 1000 + expiry.SLACK_MS, pending[1].ms)
  end)

  it("removes each channel when its lifetime ends, with its queue", function()
    local a = create(10)
    local b = create(20)
    store.enqueue(ctx.db, a.channel_id, "n", "json", "{}", T0)
    f.advance(9.9)
    assert.same({}, removed)
    f.advance(0.2)
    assert.same({ a.channel_id }, removed)
    assert.equal(0, f.count("outbox"))
    f.advance(10)
    assert.same({ a.channel_id, b.channel_id }, removed)
    assert.same({ "expired", "expired" }, reasons)
    assert.same({}, f.timer.pending())
    -- Two channels, two firings: no polling in between.
    assert.equal(2, f.timer.fired)
  end)

  it("moves the timer earlier for a channel that ends sooner", function()
    create(100)
    local short = create(5)
    assert.equal(1, #f.timer.pending())
    f.advance(5.1)
    assert.same({ short.channel_id }, removed)
  end)

  it("follows a refresh that extends the only channel", function()
    local row = create(10)
    f.advance(5)
    channels.refresh(ctx, row, 100)
    f.advance(6) -- the old due time passes: nothing is due any more
    assert.same({}, removed)
    assert.equal(1, #f.timer.pending())
    f.advance(95)
    assert.same({ row.channel_id }, removed)
  end)

  it("follows a refresh that shortens a channel", function()
    local row = create(100)
    channels.refresh(ctx, row, 2)
    f.advance(2.1)
    assert.same({ row.channel_id }, removed)
  end)

  it("fires once for nothing after a delete, then sleeps", function()
    local row = create(10)
    channels.remove(ctx, row.channel_id)
    f.advance(11)
    assert.equal(1, f.timer.fired)
    assert.same({}, f.timer.pending())
  end)

  it("on start removes what expired while down and schedules the rest", function()
    local old = create(10)
    local later = create(50)
    -- A restart: a new scheduler over the same table, after the first
    -- channel's end.
    ctx.expiry:stop()
    f.core.advance(20)
    local fresh = expiry.new(ctx, f.timer)
    ctx.expiry = fresh
    fresh:run()
    assert.same({ old.channel_id }, removed)
    local pending = f.timer.pending()
    assert.equal(1, #pending)
    assert.equal(30 * 1000 + expiry.SLACK_MS, pending[1].ms)
    f.advance(30.01)
    assert.same({ old.channel_id, later.channel_id }, removed)
  end)

  it("wakes at least hourly whatever the lifetimes", function()
    local long = fixture.new()
    channels.create(long.ctx, USER, { channel_type = "LongPolling", lifetime = 86400 })
    assert.equal(expiry.MAX_DELAY_MS, long.timer.pending()[1].ms)
    long.advance(3600)
    assert.equal(1, #long.timer.pending())
    long.close()
  end)

  it("retries after a storage failure and logs it", function()
    create(10)
    ctx.db.fail_with("database is locked")
    f.advance(10.1)
    assert.equal(1, #f.core.logged("error", "database is locked"))
    local pending = f.timer.pending()
    assert.equal(1, #pending)
    assert.equal(expiry.RETRY_MS + expiry.SLACK_MS, pending[1].ms)
    ctx.db.fail_with(nil)
    f.advance(10)
    assert.equal(1, #removed)
  end)

  it("does nothing without a timer", function()
    local bare = fixture.new({ timer = false })
    local e = expiry.new(bare.ctx, nil)
    e:note(T0 + 1)
    e:run()
    e:stop()
    bare.close()
  end)
end)
