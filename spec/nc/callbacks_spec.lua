local fixture = require("nc.fixture")
local callbacks = require("nc.callbacks")
local channels = require("nc.channels")
local store = require("nc.store")

describe("nc.callbacks", function()
  local f, ctx, row, pushed
  before_each(function()
    f = fixture.new()
    ctx = f.ctx
    row = channels.create(ctx, "tel:+1", { channel_type = "LongPolling" })
    pushed = {}
    ctx.on_notification = function(id)
      pushed[#pushed + 1] = id
    end
  end)
  after_each(function()
    f.close()
  end)

  local items = {
    { root = "movieNotification", format = "json", body = '{"movieNotification":{"a":1}}' },
    { root = "presenceNotification", format = "xml", body = "<pr:presenceNotification/>" },
  }

  it("queues every notification in order and tells the delivery side once", function()
    assert.equal(2, callbacks.enqueue(ctx, row, items))
    local q = store.queued(ctx.db, row.channel_id)
    assert.equal(2, #q)
    for i, item in ipairs(items) do
      assert.equal(item.root, q[i].root)
      assert.equal(item.format, q[i].format)
      assert.equal(item.body, q[i].body)
      assert.equal(fixture.T0, q[i].created_at)
    end
    assert.same({ row.channel_id }, pushed)
  end)

  it("stores all of one POST or nothing", function()
    local bad = { items[1], { root = "x", format = "yaml", body = "" } }
    local n, err, detail = callbacks.enqueue(ctx, row, bad)
    assert.is_nil(n)
    assert.equal("SVC2001", err.id)
    assert.is_string(detail)
    assert.equal(0, f.count("outbox"))
    assert.same({}, pushed)
  end)

  it("stores nothing for a channel that is gone", function()
    channels.remove(ctx, row.channel_id)
    assert.is_nil(callbacks.enqueue(ctx, row, items))
    assert.equal(0, f.count("outbox"))
  end)

  describe("beyond max_queued_notifications", function()
    before_each(function()
      ctx.policy.max_queued_notifications = 3
    end)

    local function item(n)
      return { root = "aNotification", format = "json", body = '{"aNotification":{"n":' .. n .. '}}' }
    end

    local function refused(list)
      local n, err, detail = callbacks.enqueue(ctx, row, list)
      assert.is_false(n)
      assert.equal("SVC2001", err.id)
      assert.equal(503, err.status)
      assert.is_nil(detail)
    end

    it("fills the queue to the limit exactly", function()
      assert.equal(2, callbacks.enqueue(ctx, row, { item(1), item(2) }))
      assert.equal(1, callbacks.enqueue(ctx, row, { item(3) }))
      assert.equal(3, f.count("outbox"))
    end)

    it("refuses what would pass it, storing nothing, and logs one warn line", function()
      assert.equal(2, callbacks.enqueue(ctx, row, { item(1), item(2) }))
      pushed = {}
      -- A list that would cross the limit is refused whole, not cut.
      refused({ item(3), item(4) })
      assert.equal(2, f.count("outbox"))
      assert.same({}, pushed)
      assert.same({ "callback id1: queue full, refused 2 notification(s): 2 queued (limit 3)" },
        f.core.logged("warn"))
      assert.equal(1, callbacks.enqueue(ctx, row, { item(3) }))
      refused({ item(4) })
      assert.equal(3, f.count("outbox"))
      assert.equal(2, #f.core.logged("warn"))
      assert.truthy(f.core.logged("warn")[2]:find("at least 3 queued (limit 3)", 1, true))
      assert.same({}, f.core.logged("error"))
    end)

    it("counts only the channel's own rows", function()
      local other = channels.create(ctx, "tel:+2", { channel_type = "LongPolling" })
      assert.equal(3, callbacks.enqueue(ctx, other, { item(1), item(2), item(3) }))
      assert.equal(3, callbacks.enqueue(ctx, row, { item(1), item(2), item(3) }))
    end)

    it("counts rows a fan-out queued, even past the limit", function()
      for i = 1, 5 do
        assert(store.enqueue(ctx.db, row.channel_id, "movieNotification", "json", "{}", fixture.T0))
      end
      refused({ item(1) })
      assert.equal(5, f.count("outbox"))
    end)

    it("accepts again once delivery has taken rows away", function()
      assert.equal(3, callbacks.enqueue(ctx, row, { item(1), item(2), item(3) }))
      refused({ item(4) })
      local q = store.queued(ctx.db, row.channel_id, 1)
      assert.equal(1, store.dequeue(ctx.db, row.channel_id, { q[1].seq }))
      assert.equal(1, callbacks.enqueue(ctx, row, { item(4) }))
      refused({ item(5) })
    end)
  end)
end)
