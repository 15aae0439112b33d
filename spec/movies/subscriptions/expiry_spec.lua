local fixture = require("movies.subscriptions.fixture")
local expiry = require("movies.subscriptions.expiry")
local model = require("movies.subscriptions.model")

local T0 = fixture.T0
local USER = fixture.USER

describe("movies.subscriptions.expiry", function()
  local f, ctx, ch
  before_each(function()
    f = fixture.new({ config = { subscription_duration_min = 1,
      channel_lifetime_max = 10 ^ 6 // 1, channel_lifetime_default = 10 ^ 5 // 1 } })
    ctx = f.ctx
    ch = f.channel(USER)
  end)
  after_each(function()
    f.close()
  end)

  local function create(duration)
    return assert(model.create(ctx, USER, { notify_url = f.callback_url(ch),
      notification_format = "json", duration = duration, movie_ids = { 1 } }))
  end

  -- The pending subscription timer: the one the scheduler holds.
  local function pending()
    local list = {}
    for _, t in ipairs(f.timer.pending()) do
      if t.id == ctx.expiry.id then
        list[#list + 1] = t
      end
    end
    return list
  end

  local function count()
    return f.count("movie_subscriptions")
  end

  it("sets no timer while there are no subscriptions", function()
    ctx.expiry:run()
    assert.is_nil(ctx.expiry.id)
  end)

  it("sets one timer, at the earliest end", function()
    create(100)
    create(10)
    create(1000)
    local p = pending()
    assert.equal(1, #p)
    assert.equal(10 * 1000 + expiry.SLACK_MS, p[1].ms)
  end)

  it("removes each subscription when its duration ends, with its filter", function()
    local a = create(10)
    local b = create(20)
    f.advance(9.9)
    assert.equal(2, count())
    f.advance(0.2)
    assert.equal(1, count())
    assert.is_false(model.find(ctx, USER, a.subscription_id))
    assert.equal(1, f.count("movie_subscription_filter"))
    f.advance(10)
    assert.equal(0, count())
    assert.is_nil(ctx.expiry.id)
    assert.same({ "movie subscription " .. a.subscription_id .. " expired",
      "movie subscription " .. b.subscription_id .. " expired" },
      f.core.logged("info", "expired"))
  end)

  it("moves the timer earlier for a subscription that ends sooner", function()
    create(100)
    local short = create(5)
    assert.equal(1, #pending())
    f.advance(5.1)
    assert.equal(1, count())
    assert.is_false(model.find(ctx, USER, short.subscription_id))
  end)

  it("fires once for nothing after a delete, then follows the table", function()
    local a = create(10)
    create(50)
    model.remove(ctx, a.subscription_id)
    f.advance(11)
    assert.equal(1, count())
    assert.equal(1, #pending())
    f.advance(40)
    assert.equal(0, count())
  end)

  it("removes at start what expired while the server was down", function()
    create(10)
    create(100)
    ctx.expiry:stop()
    f.core.set_time(T0 + 50)
    ctx.expiry:run() -- what api.start does
    assert.equal(1, count())
    assert.equal(1, #pending())
    assert.equal(50 * 1000 + expiry.SLACK_MS, pending()[1].ms)
  end)

  it("wakes at least hourly", function()
    create(86400)
    assert.equal(expiry.MAX_DELAY_MS, pending()[1].ms)
    f.advance(3600.01)
    assert.equal(1, count())
    assert.equal(1, #pending())
  end)

  it("retries after a storage failure, and logs it", function()
    create(10)
    f.core.db.fail_with("database is locked")
    f.advance(10.1)
    assert.equal(1, #f.core.logged("error", "database is locked"))
    assert.equal(expiry.RETRY_MS + expiry.SLACK_MS, pending()[1].ms)
    f.core.db.fail_with(nil)
    f.advance(10)
    assert.equal(0, count())
  end)

  it("does without a timer: access still expires", function()
    f.close()
    f = fixture.new({ timer = false })
    ctx = f.ctx
    ch = f.channel(USER)
    local row = create(60)
    assert.is_nil(ctx.expiry.id)
    f.core.set_time(T0 + 60)
    assert.is_false(model.find(ctx, USER, row.subscription_id))
    assert.equal(0, count())
  end)
end)
