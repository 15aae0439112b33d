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
    -- A WebSocket message's rows go at the next turn of the loop, in one
    -- transaction with the others written meanwhile.
    assert.equal(2, #store.queued(ctx.db, ws.channel_id))
    f.advance(0)
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
    d:written(hub.sent[1].token, true)
    f.core.db.fail_with("disk I/O error")
    f.advance(0)
    f.core.db.fail_with(nil)
    assert.equal(1, #f.core.logged("error", "delivery settling 1 message(s): disk I/O error"))
    assert.equal(1, f.count("outbox"))
  end)

  it("logs a failed settle of a long poll answer and leaves its rows", function()
    local lp = channels.create(ctx, "tel:+1", { channel_type = "LongPolling" })
    hub.apply(lp.channel_id, assert(d:handle_poll({ method = "POST", path = "/p",
      headers = {}, body = "" }, lp, "json")))
    callbacks.enqueue(ctx, lp, { item("a") })
    f.core.db.fail_with("disk I/O error")
    d:written(hub.answers[1].token, true)
    f.core.db.fail_with(nil)
    assert.equal(1, #f.core.logged("error", "delivery " .. channels.label(lp.channel_id)
      .. ": disk I/O error"))
    assert.equal(1, f.count("outbox"))
  end)

  describe("settling WebSocket messages in batches", function()
    local function open_ws(user)
      local ws = channels.create(ctx, user or "tel:+1", { channel_type = "WebSockets" })
      d:ws_open(ws.channel_id, hub.apply(ws.channel_id,
        websocket.upgrade(ws.channel_id, websocket.PROTOCOL)))
      return ws
    end

    local function deletes_since(n)
      local count = 0
      for i = n + 1, #ctx.db.statements do
        if ctx.db.statements[i]:find("^DELETE FROM outbox") then
          count = count + 1
        end
      end
      return count
    end

    it("settles the messages of many channels in one flush", function()
      local rows = {}
      for i = 1, 5 do
        rows[i] = open_ws("tel:+" .. i)
        callbacks.enqueue(ctx, rows[i], { item("a") })
      end
      for i = 1, 5 do
        hub.drain(rows[i].channel_id)
      end
      hub.deliver(sink)
      assert.equal(5, f.count("outbox"))
      local before = #ctx.db.statements
      f.advance(0)
      assert.equal(0, f.count("outbox"))
      assert.equal(5, deletes_since(before))
    end)

    it("flushes at once when SETTLE_BATCH messages are waiting", function()
      local saved = delivery.SETTLE_BATCH
      delivery.SETTLE_BATCH = 2
      local a, b, c = open_ws("tel:+1"), open_ws("tel:+2"), open_ws("tel:+3")
      for _, r in ipairs({ a, b, c }) do
        callbacks.enqueue(ctx, r, { item("a") })
      end
      d:written(hub.sent[1].token, true)
      assert.equal(3, f.count("outbox"))
      d:written(hub.sent[2].token, true)
      assert.equal(1, f.count("outbox"))
      d:written(hub.sent[3].token, true)
      delivery.SETTLE_BATCH = saved
      f.advance(0)
      assert.equal(0, f.count("outbox"))
    end)

    it("flushes before a new connection reads the outbox, so nothing is sent twice", function()
      local ws = open_ws()
      callbacks.enqueue(ctx, ws, { item("a") })
      d:written(hub.sent[1].token, true)
      assert.equal(1, f.count("outbox"))
      -- The client reconnects before the loop turned.
      d:ws_open(ws.channel_id, hub.apply(ws.channel_id,
        websocket.upgrade(ws.channel_id, websocket.PROTOCOL)))
      assert.equal(1, #hub.sent)
      assert.equal(0, f.count("outbox"))
      -- The flush timer finds nothing left to do.
      f.advance(0)
      assert.equal(0, f.count("outbox"))
    end)

    it("flushes when the server stops", function()
      local ws = open_ws()
      callbacks.enqueue(ctx, ws, { item("a") })
      d:written(hub.sent[1].token, true)
      d:gone(ws.channel_id, 1, "stopping", 1001)
      assert.equal(0, f.count("outbox"))
    end)
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
  describe("wake-up queue (movie fan-out)", function()
    -- n WebSockets channels with a client connected and one notification
    -- each waiting, as a movie change leaves them.
    local function connected(n)
      local ids = {}
      for i = 1, n do
        local row = channels.create(ctx, "tel:+" .. i, { channel_type = "WebSockets" })
        local id = hub.apply(row.channel_id, websocket.upgrade(row.channel_id,
          websocket.PROTOCOL))
        d:ws_open(row.channel_id, id)
        assert(store.enqueue(ctx.db, row.channel_id, "a", "json", '{"a":{}}', ctx.now()))
        ids[i] = row.channel_id
      end
      return ids
    end

    -- The pending timer of the next slice, if any.
    local function slice_timer()
      for _, t in ipairs(f.timer.pending()) do
        if t.id == d.slice_timer then
          return t
        end
      end
    end

    local function sent_to()
      local keys = {}
      for _, s in ipairs(hub.sent) do
        keys[#keys + 1] = s.key
      end
      return keys
    end

    it("does no delivery work in wake itself: the first slice runs once the loop is free", function()
      local ids = connected(3)
      d:wake(ids)
      assert.same({}, hub.sent)
      assert.equal(3, d:queued())
      assert.equal(0, slice_timer().ms)
      f.advance(0)
      assert.same(ids, sent_to())
      assert.equal(0, d:queued())
      assert.is_nil(d.slice_timer)
    end)

    it("queues a channel once however often it is woken", function()
      local ids = connected(2)
      d:wake({ ids[1], ids[2], ids[1] })
      d:wake({ ids[2] })
      assert.equal(2, d:queued())
      local timer = d.slice_timer
      assert.truthy(timer)
      d:wake({ ids[1] })
      assert.equal(timer, d.slice_timer)
      f.advance(0)
      assert.same(ids, sent_to())
      -- Woken again later: queued again.
      d:wake({ ids[1] })
      assert.equal(1, d:queued())
    end)

    it("works in slices bounded by SLICE_MS, continuing until the queue is empty", function()
      local ids = connected(20)
      -- Each channel's delivery takes 3 ms of the (fake) clock.
      local send = hub.send
      hub.send = function(...)
        f.core.advance(0.003)
        return send(...)
      end
      d:wake(ids)
      local slices, per_slice = 0, {}
      f.advance(0)
      while true do
        slices = slices + 1
        per_slice[#per_slice + 1] = #hub.sent
        if d:queued() == 0 then
          break
        end
        -- The next slice waits SLICE_GAP_MS, so the loop polls for I/O.
        local next_timer = slice_timer()
        assert.equal(delivery.SLICE_GAP_MS, next_timer.ms)
        f.advance(next_timer.due - f.core.now())
      end
      -- 10 ms per slice: the fourth channel's 3 ms crosses it, then it stops.
      assert.same({ 4, 8, 12, 16, 20 }, per_slice)
      assert.same(ids, sent_to())
      assert.is_nil(d.slice_timer)
      assert.equal(5, #f.core.logged("debug", "delivery: woke 4 channel(s) in 12 ms"))
      local summary = f.core.logged("info", "delivery: woke 20 channel(s) in 5 slices")
      assert.equal(1, #summary)
      assert.matches("longest slice 12 ms$", summary[1])
    end)

    it("ends a slice when the clock goes back", function()
      local ids = connected(3)
      local send = hub.send
      hub.send = function(...)
        f.core.advance(-60)
        return send(...)
      end
      d:wake(ids)
      f.advance(0)
      -- (The fake timer then fires the next slices at once: their time has
      -- come on the clock that went back.)
      assert.equal(3, #f.core.logged("debug", "delivery: woke 1 channel(s)"))
      assert.same(ids, sent_to())
    end)

    it("takes in channels woken during a slice without starting another", function()
      local ids = connected(3)
      d:wake({ ids[1] })
      local send = hub.send
      hub.send = function(key, ...)
        if key == ids[1] then
          d:wake({ ids[2], ids[3] })
          assert.is_nil(d.slice_timer)
        end
        return send(key, ...)
      end
      f.advance(0)
      assert.same(ids, sent_to())
    end)

    it("logs a channel whose delivery raises and goes on with the others", function()
      local ids = connected(3)
      local notify = d.ws.notify
      d.ws.notify = function(ws, id)
        if id == ids[2] then
          error("boom")
        end
        return notify(ws, id)
      end
      d:wake(ids)
      f.advance(0)
      assert.same({ ids[1], ids[3] }, sent_to())
      assert.equal(1, #f.core.logged("error", "delivery " .. channels.label(ids[2]) .. ": "))
      assert.truthy(f.core.logged("error", "boom")[1])
      -- Its row is still there, for the next wake-up or connection.
      assert.equal(1, #store.queued(ctx.db, ids[2]))
      d.ws.notify = notify
      d:wake({ ids[2] })
      f.advance(0)
      assert.same({ ids[1], ids[3], ids[2] }, sent_to())
    end)

    it("answers parked long polls from the queue too", function()
      local lp = channels.create(ctx, "tel:+1", { channel_type = "LongPolling" })
      hub.apply(lp.channel_id, assert(d:handle_poll({ method = "POST", path = "/p",
        headers = {}, body = "" }, lp, "json")))
      assert(store.enqueue(ctx.db, lp.channel_id, "a", "json", '{"a":{}}', ctx.now()))
      d:wake({ lp.channel_id })
      assert.equal(0, #hub.answers)
      f.advance(0)
      assert.equal(1, #hub.answers)
    end)

    it("loses nothing for a channel with no client: its rows wait for the next one", function()
      local row = channels.create(ctx, "tel:+1", { channel_type = "WebSockets" })
      assert(store.enqueue(ctx.db, row.channel_id, "a", "json", '{"a":{}}', ctx.now()))
      d:wake({ row.channel_id })
      f.advance(0)
      assert.equal(0, #hub.sent)
      local id = hub.apply(row.channel_id, websocket.upgrade(row.channel_id, websocket.PROTOCOL))
      d:ws_open(row.channel_id, id)
      assert.equal(1, #hub.sent)
    end)

    describe("a range of outbox rows (one movie change)", function()
      -- The seqs of the first and last rows of channels `ids`.
      local function range_of(ids)
        local first, last
        for _, id in ipairs(ids) do
          for _, r in ipairs(store.queued(ctx.db, id)) do
            first = math.min(first or r.seq, r.seq)
            last = math.max(last or r.seq, r.seq)
          end
        end
        return first, last
      end

      it("feeds the channels of the rows, in slices, each channel once per batch", function()
        local ids = connected(6)
        -- A second row for the third channel (a second subscription).
        assert(store.enqueue(ctx.db, ids[3], "b", "json", '{"b":{}}', ctx.now()))
        local first, last = range_of(ids)
        d:wake_range(first, last)
        assert.equal(1, d:queued())
        assert.same({}, hub.sent)
        f.advance(0)
        assert.same(ids, sent_to())
        -- Both rows of the third channel went in its one message.
        assert.equal('{"notificationList":[{"a":{}},{"b":{}}]}', hub.sent[3].text)
        assert.equal(0, d:queued())
      end)

      it("reads the range RANGE_BATCH rows at a time and keeps its place across slices", function()
        local saved = delivery.RANGE_BATCH
        delivery.RANGE_BATCH = 4
        local ids = connected(10)
        local send = hub.send
        hub.send = function(...)
          f.core.advance(0.004)
          return send(...)
        end
        d:wake_range(range_of(ids))
        local before = #ctx.db.statements
        while d:queued() > 0 do
          local due
          for _, t in ipairs(f.timer.pending()) do
            if t.id == d.slice_timer then
              due = t.due
            end
          end
          f.advance(due - f.core.now())
        end
        delivery.RANGE_BATCH = saved
        assert.same(ids, sent_to())
        local reads = 0
        for i = before + 1, #ctx.db.statements do
          if ctx.db.statements[i]:find("^SELECT seq, channel_id FROM outbox") then
            reads = reads + 1
          end
        end
        -- 3 channels per 10 ms slice (4 ms each): 4 slices, each reading
        -- from where the last stopped.
        assert.equal(4, #f.core.logged("debug", "delivery: woke"))
        assert.equal(4, reads)
      end)

      it("skips rows already delivered and ignores an empty range", function()
        local ids = connected(3)
        local first, last = range_of(ids)
        d:wake_range(first, last)
        -- The second channel's client reconnects and gets its row first.
        d:ws_open(ids[2], hub.apply(ids[2], websocket.upgrade(ids[2], websocket.PROTOCOL)))
        hub.drain(ids[2])
        hub.deliver(sink)
        d:flush()
        f.advance(0)
        assert.same({ ids[2], ids[1], ids[3] }, sent_to())
        d:wake_range(last + 1, last + 10)
        d:wake_range(5, 4)
        f.advance(0)
        assert.equal(3, #hub.sent)
        assert.equal(0, d:queued())
      end)

      it("logs a range it cannot read and goes on with the queue", function()
        local ids = connected(2)
        d:wake_range(range_of({ ids[1] }))
        d:wake({ ids[2] })
        local query = ctx.db.query
        ctx.db.query = function(sql, ...)
          if sql:find("^SELECT seq, channel_id") then
            return nil, "disk I/O error"
          end
          return query(sql, ...)
        end
        f.advance(0)
        ctx.db.query = query
        assert.equal(1, #f.core.logged("error", "delivery: outbox rows"))
        assert.same({ ids[2] }, sent_to())
        -- The row is still there for the next connection.
        assert.equal(1, #store.queued(ctx.db, ids[1]))
      end)
    end)

    it("works through the queue at once without timers", function()
      local g = fixture.new({ timer = false })
      local dd = delivery.new(g.ctx)
      local row = channels.create(g.ctx, "tel:+1", { channel_type = "WebSockets" })
      local id = g.hub.apply(row.channel_id, websocket.upgrade(row.channel_id,
        websocket.PROTOCOL))
      dd:ws_open(row.channel_id, id)
      assert(store.enqueue(g.ctx.db, row.channel_id, "a", "json", '{"a":{}}', g.ctx.now()))
      dd:wake({ row.channel_id })
      assert.equal(1, #g.hub.sent)
      g.close()
    end)
  end)
end)
