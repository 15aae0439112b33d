local fixture = require("nc.fixture")
local callbacks = require("nc.callbacks")
local channels = require("nc.channels")
local delivery = require("nc.delivery")
local store = require("nc.store")
local websocket = require("nc.websocket")

describe("nc.delivery", function()
  local f, ctx, hub, d
  before_each(function()
    f = fixture.new({ config = { channel_lifetime_min = 1 } })
    ctx, hub = f.ctx, f.hub
    d = delivery.new(ctx)
  end)
  after_each(function()
    f.close()
  end)

  local sink = {
    written = function(token, ok) d:written(token, ok) end,
    gone = function(...) d:gone(...) end,
  }

  local function item(name)
    return { root = name, format = "json", body = '{"' .. name .. '":{}}' }
  end

  it("hooks itself into ctx", function()
    assert.is_function(ctx.on_notification)
    assert.is_function(ctx.on_channel_removed)
  end)

  it("routes notifications and removals to the channel's kind of delivery", function()
    local lp = channels.create(ctx, "tel:+1", { channel_type = "LongPolling" })
    local ws = channels.create(ctx, "tel:+1", { channel_type = "WebSockets" })
    hub.apply(lp.channel_id, assert(d:handle_poll({ method = "POST", path = "/p",
      headers = {}, body = "" }, lp, "json")))
    local id = hub.apply(ws.channel_id, websocket.upgrade(ws.channel_id, websocket.PROTOCOL))
    d:ws_open(ws.channel_id, id)
    callbacks.enqueue(ctx, lp, { item("a") })
    callbacks.enqueue(ctx, ws, { item("b") })
    assert.equal(1, #hub.answers)
    assert.equal(lp.channel_id, hub.answers[1].key)
    assert.equal(1, #hub.sent)
    assert.equal(ws.channel_id, hub.sent[1].key)
    channels.remove(ctx, ws.channel_id, channels.DELETED)
    channels.remove(ctx, lp.channel_id, channels.DELETED)
    assert.same({ ws.channel_id }, { hub.closed[1].key })
    assert.equal(1, #hub.closed)
  end)

  it("settles the rows of written output, and only written output", function()
    local ws = channels.create(ctx, "tel:+1", { channel_type = "WebSockets" })
    local id = hub.apply(ws.channel_id, websocket.upgrade(ws.channel_id, websocket.PROTOCOL))
    d:ws_open(ws.channel_id, id)
    callbacks.enqueue(ctx, ws, { item("a") })
    callbacks.enqueue(ctx, ws, { item("b") })
    assert.equal(2, d.tokens:size())
    d:written(hub.sent[2].token, false)
    d:written(hub.sent[1].token, true)
    assert.equal(0, d.tokens:size())
    local left = store.queued(ctx.db, ws.channel_id)
    assert.same({ "b" }, { left[1].root })
    -- Exactly once: a repeated or unknown token changes nothing.
    d:written(hub.sent[1].token, true)
    d:written(12345, true)
  end)

  it("logs a failed settle and leaves the rows to be delivered again", function()
    local ws = channels.create(ctx, "tel:+1", { channel_type = "WebSockets" })
    local id = hub.apply(ws.channel_id, websocket.upgrade(ws.channel_id, websocket.PROTOCOL))
    d:ws_open(ws.channel_id, id)
    callbacks.enqueue(ctx, ws, { item("a") })
    f.core.db.fail_with("disk I/O error")
    d:written(hub.sent[1].token, true)
    f.core.db.fail_with(nil)
    assert.equal(1, #f.core.logged("error", "delivery " .. channels.label(ws.channel_id)
      .. ": disk I/O error"))
    assert.equal(1, f.count("outbox"))
  end)

  it("tells a WebSocket's gone from a parked poll's", function()
    local lp = channels.create(ctx, "tel:+1", { channel_type = "LongPolling" })
    local ws = channels.create(ctx, "tel:+1", { channel_type = "WebSockets" })
    hub.apply(lp.channel_id, assert(d:handle_poll({ method = "POST", path = "/p",
      headers = {}, body = "" }, lp, "json")))
    local id = hub.apply(ws.channel_id, websocket.upgrade(ws.channel_id, websocket.PROTOCOL))
    d:ws_open(ws.channel_id, id)
    hub.timeout(lp.channel_id)
    hub.drop(ws.channel_id, "peer", 1001)
    assert.equal(2, hub.deliver(sink))
    assert.equal(1, #f.core.logged("info", "long poll " .. channels.label(lp.channel_id)
      .. ": ended (timeout)"))
    assert.equal(1, #f.core.logged("info", "websocket " .. channels.label(ws.channel_id)
      .. " #" .. id .. ": closed, peer (1001)"))
    -- A gone for nothing we know is ignored.
    d:gone("nope", 999, "peer", 0)
  end)
end)
