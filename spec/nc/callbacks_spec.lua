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
end)
