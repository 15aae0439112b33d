local fixture = require("nc.fixture")
local fx = require("fixtures.nc_fixtures")
local structure = require("support.structure")
local callbacks = require("nc.callbacks")
local channels = require("nc.channels")
local delivery = require("nc.delivery")
local json = require("codec.json")
local notification = require("codec.notification")
local store = require("nc.store")
local websocket = require("nc.websocket")

local PROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"

describe("nc.websocket", function()
  describe("handshake (I.1, I.2)", function()
    local function req(headers, method)
      return { method = method or "GET", path = "/x/ws", query = "", headers = headers, body = "" }
    end

    it("takes an upgrade that offers the subprotocol, and echoes it", function()
      for _, offered in ipairs({ PROTOCOL, "chat, " .. PROTOCOL, PROTOCOL .. ",chat",
          " chat ,  " .. PROTOCOL .. " " }) do
        assert.equal(PROTOCOL, websocket.handshake(req({ upgrade = "websocket",
          ["sec-websocket-protocol"] = offered })), offered)
      end
      assert.equal(PROTOCOL, websocket.handshake(req({ upgrade = "h2c, WebSocket",
        ["sec-websocket-protocol"] = PROTOCOL })))
    end)

    it("answers 426 naming Upgrade to a request that is no upgrade (RFC 7231 6.5.15)", function()
      for _, r in ipairs({ req({}), req({ upgrade = "h2c" }),
          req({ upgrade = "websocket", ["sec-websocket-protocol"] = PROTOCOL }, "HEAD") }) do
        local p, err, headers = websocket.handshake(r)
        assert.is_nil(p)
        assert.equal("SVC0002", err.id)
        assert.equal(426, err.status)
        assert.same({ "Upgrade" }, err.variables)
        assert.same({ Upgrade = "websocket" }, headers)
      end
    end)

    it("answers 400 naming Sec-WebSocket-Protocol when the subprotocol is not offered", function()
      for _, offered in ipairs({ false, "", "chat", PROTOCOL:upper(), PROTOCOL .. ".evil",
          "x" .. PROTOCOL, PROTOCOL:sub(1, -2) }) do
        local p, err = websocket.handshake(req({ upgrade = "websocket",
          ["sec-websocket-protocol"] = offered or nil }))
        assert.is_nil(p, tostring(offered))
        assert.equal(400, err.status)
        assert.same({ "Sec-WebSocket-Protocol" }, err.variables)
      end
    end)

    it("asks the core to upgrade under the channel id", function()
      assert.same({ status = 101, headers = {}, body = "",
        upgrade = { key = "ch1", protocol = PROTOCOL } }, websocket.upgrade("ch1", PROTOCOL))
    end)
  end)

  describe("delivery", function()
    local f, ctx, hub, d, row, key, sink

    before_each(function()
      f = fixture.new({ config = { channel_lifetime_min = 1 } })
      ctx, hub = f.ctx, f.hub
      d = delivery.new(ctx)
      sink = {
        written = function(token, ok) d:written(token, ok) end,
        gone = function(...) d:gone(...) end,
      }
      row = channels.create(ctx, "tel:+1", { channel_type = "WebSockets",
        max_notifications = 2, lifetime = 100 })
      key = row.channel_id
    end)
    after_each(function()
      f.close()
    end)

    -- A client connects: the core upgrades, then tells the app.
    local function connect()
      local id = hub.apply(key, websocket.upgrade(key, PROTOCOL))
      d:ws_open(key, id)
      return id
    end

    -- The core reports what was written, then the loop turns (written
    -- messages are settled in a batch at the next turn: nc/delivery.lua).
    local function deliver()
      local n = hub.deliver(sink)
      f.advance(0)
      return n
    end

    local function item(name, n, format)
      if format == "xml" then
        return { root = name, format = "xml", body = "<m:" .. name .. ' xmlns:m="urn:m"><n>'
          .. n .. "</n></m:" .. name .. ">" }
      end
      return { root = name, format = "json", body = '{"' .. name .. '":{"n":' .. n .. "}}" }
    end

    local function enqueue(...)
      assert(callbacks.enqueue(ctx, row, { ... }))
    end

    local function enqueue_example(name, content_type)
      assert(callbacks.enqueue(ctx, row, assert(notification.split(fx.request(content_type,
        fx.load(name))))))
    end

    -- The roots in each message sent so far (from message `from`).
    local function messages(from)
      local out = {}
      for _, text in ipairs(hub.texts(key, from)) do
        local ct = text:sub(1, 1) == "<" and "application/xml" or "application/json"
        local roots = {}
        for _, i in ipairs(structure.items(text, ct)) do
          roots[#roots + 1] = i.root
        end
        out[#out + 1] = table.concat(roots, ",")
      end
      return out
    end

    local function queued()
      local out = {}
      for _, r in ipairs(store.queued(ctx.db, key)) do
        out[#out + 1] = r.root
      end
      return out
    end

    it("sends what waits on open, oldest first, maxNotifications per message", function()
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      connect()
      assert.same({ "a,b", "c" }, messages())
      assert.equal('{"notificationList":[{"a":{"n":1}},{"b":{"n":2}}]}', hub.sent[1].text)
      for _, s in ipairs(hub.sent) do
        assert.equal("integer", math.type(s.token))
      end
      assert.equal(1, #f.core.logged("info", ": open"))
    end)

    it("removes notifications from the outbox only once written", function()
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      connect()
      assert.same({ "a", "b", "c" }, queued())
      hub.drain(key, 1)
      deliver()
      assert.same({ "c" }, queued())
      hub.drain(key)
      deliver()
      assert.same({}, queued())
    end)

    it("sends a notification as soon as it arrives", function()
      connect()
      assert.same({}, hub.sent)
      enqueue(item("a", 1))
      assert.same({ "a" }, messages())
      enqueue(item("b", 2), item("c", 3), item("d", 4))
      assert.same({ "a", "b,c", "d" }, messages())
    end)

    it("keeps each message to one stored format, and sends it in that format", function()
      enqueue(item("a", 1), item("b", 2, "xml"), item("c", 3, "xml"), item("d", 4, "xml"),
        item("e", 5))
      connect()
      assert.same({ "a", "b,c", "d", "e" }, messages())
      assert.equal("{", hub.sent[1].text:sub(1, 1))
      assert.equal("<?xml", hub.sent[2].text:sub(1, 5))
      assert.equal("{", hub.sent[4].text:sub(1, 1))
    end)

    describe("payloads as in I.4 and I.5", function()
      before_each(function()
        row = channels.create(ctx, "tel:+1", { channel_type = "WebSockets", max_notifications = 3 })
        key = row.channel_id
      end)

      it("sends XML notifications as I.4.1 and I.4.2 show", function()
        enqueue_example("I.4.1.xml", "application/xml")
        connect()
        assert.same(structure.xml(fx.load("I.4.1.xml")), structure.xml(hub.sent[1].text))
        enqueue_example("I.4.2.xml", "application/xml")
        assert.equal(2, #hub.sent)
        assert.same(structure.xml(fx.load("I.4.2.xml")), structure.xml(hub.sent[2].text))
      end)

      it("sends JSON notifications as I.5.1 and I.5.2 show", function()
        enqueue_example("I.5.1.json", "application/json")
        connect()
        assert.same(structure.items(fx.load("I.5.1.json"), "application/json"),
          structure.items(hub.sent[1].text, "application/json"))
        assert.matches('^{"notificationList":%[', hub.sent[1].text)
        enqueue_example("I.5.2.json", "application/json")
        assert.same(structure.json(fx.load("I.5.2.json")), structure.json(hub.sent[2].text))
      end)
    end)

    describe("a slow reader (API.md 2)", function()
      it("stops at a full window and catches up in order as it drains", function()
        connect()
        hub.limit(key, 1)
        for i = 1, 7 do
          enqueue(item("n" .. i, i))
        end
        assert.same({ "n1" }, messages())
        hub.drain(key, 1)
        deliver()
        assert.same({ "n1", "n2,n3" }, messages())
        hub.drain(key, 1)
        deliver()
        hub.drain(key, 1)
        deliver()
        hub.drain(key, 1)
        deliver()
        assert.same({ "n1", "n2,n3", "n4,n5", "n6,n7" }, messages())
        assert.same({}, queued())
        hub.drain(key)
        deliver()
        assert.equal(4, #hub.sent)
      end)

      it("keeps what did not fit in the outbox, not in memory", function()
        connect()
        hub.limit(key, 0)
        for i = 1, 50 do
          enqueue(item("n" .. i, i))
        end
        assert.equal(0, #hub.sent)
        assert.equal(0, d.tokens:size())
        assert.equal(50, #queued())
      end)
    end)

    describe("a channel with much waiting", function()
      it("sends at most PUMP_MESSAGES messages per pump, the rest after other channels", function()
        for i = 1, 40 do
          enqueue(item("n" .. i, i))
        end
        connect()
        local per = websocket.PUMP_MESSAGES
        assert.equal(per, #hub.sent)
        -- The rest waits in the wake-up queue, behind whatever is there:
        -- here another channel with one notification.
        assert.equal(1, d:queued())
        local other = channels.create(ctx, "tel:+2", { channel_type = "WebSockets" })
        d:ws_open(other.channel_id, hub.apply(other.channel_id,
          websocket.upgrade(other.channel_id, PROTOCOL)))
        assert(store.enqueue(ctx.db, other.channel_id, "o", "json", '{"o":{}}', ctx.now()))
        d:wake({ other.channel_id })
        f.advance(0)
        assert.equal(0, d:queued())
        local order = {}
        for _, sent in ipairs(hub.sent) do
          order[#order + 1] = sent.key == key and "k" or "o"
        end
        -- 8 of ours at open; in the slice 8 more (ours was queued first),
        -- then the other channel's turn, then ours again.
        assert.equal(2 * per + 1, #table.concat(order):match("^k+o"))
        assert.equal(21, #hub.sent)
        assert.same({ "n1,n2" }, { messages()[1] })
        assert.same({ "n39,n40" }, { messages()[20] })
        hub.drain(key)
        deliver()
        assert.same({}, queued())
      end)

      it("does not read the outbox for room in the window when all was sent", function()
        connect()
        enqueue(item("a", 1))
        assert.equal(1, #hub.sent)
        local before = #ctx.db.statements
        hub.drain(key)
        deliver()
        for i = before + 1, #ctx.db.statements do
          assert.is_nil(ctx.db.statements[i]:find("^SELECT seq"))
        end
        -- A notification after that is read and sent as ever.
        enqueue(item("b", 2))
        assert.same({ "a", "b" }, messages())
      end)

      it("reads on for room in the window when a full window stopped it", function()
        connect()
        hub.limit(key, 1)
        enqueue(item("a", 1), item("b", 2), item("c", 3))
        assert.same({ "a,b" }, messages())
        hub.drain(key, 1)
        deliver()
        assert.same({ "a,b", "c" }, messages())
      end)
    end)

    describe("a new connection (I.3)", function()
      it("replaces the old one and starts from the oldest notification stored", function()
        enqueue(item("a", 1), item("b", 2), item("c", 3))
        local first = connect()
        hub.drain(key, 1)
        deliver()
        local second = connect()
        deliver()
        -- a and b were written on the first; c was in flight and is sent again.
        assert.same({ "a,b", "c", "c" }, messages())
        assert.equal(first, hub.sent[2].id)
        assert.equal(second, hub.sent[3].id)
        enqueue(item("d", 4))
        assert.equal(second, hub.sent[4].id)
        assert.equal(1, #f.core.logged("info", "open, replacing #" .. first))
        assert.equal(1, #f.core.logged("info", "#" .. first .. ": closed, replaced (1000)"))
      end)

      it("ignores messages from the replaced connection", function()
        local first = connect()
        connect()
        d:ws_message(key, first, '{"connCheck":{}}')
        assert.same({}, hub.sent)
        -- The only close is the core's, of the replaced connection.
        assert.same({ { key = key, id = first, code = 1000, reason = "replaced" } }, hub.closed)
      end)

      it("gets again what a lost connection held (at least once)", function()
        enqueue(item("a", 1), item("b", 2))
        connect()
        hub.drop(key, "peer")
        deliver()
        assert.same({ "a", "b" }, queued())
        assert.equal(1, #f.core.logged("info", "closed, peer (1006)"))
        enqueue(item("c", 3))
        assert.equal(1, #hub.sent)
        connect()
        assert.same({ "a,b", "a,b", "c" }, messages())
      end)
    end)

    describe("connCheck from the client (I.3, 5.2.2.11)", function()
      it("is answered with connAck carrying the lifetime, which restarts", function()
        local id = connect()
        f.advance(30)
        d:ws_message(key, id, '{"connCheck":{"checkInterval":60}}')
        assert.same({ connAck = { channelLifetime = 100 } }, json.decode(hub.sent[1].text))
        assert.equal(100, channels.remaining(store.by_id(ctx.db, key), ctx.now()))
      end)

      it("goes ahead of waiting notifications, one connAck however many connChecks", function()
        local id = connect()
        hub.limit(key, 1)
        enqueue(item("a", 1))
        enqueue(item("b", 2))
        d:ws_message(key, id, '{"connCheck":{}}')
        d:ws_message(key, id, '<nc:connCheck xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"/>')
        assert.same({ "a" }, messages())
        hub.drain(key, 1)
        deliver()
        assert.equal(2, #hub.sent)
        assert.truthy(hub.sent[2].text:find("<nc:connAck", 1, true), "the XML one, coalesced")
        hub.drain(key, 1)
        deliver()
        assert.same({ "b" }, messages(3))
        assert.equal(3, #hub.sent)
      end)

      it("tries again later when the window is full of output not ours", function()
        local id = connect()
        hub.limit(key, 0)
        d:ws_message(key, id, '{"connCheck":{}}')
        assert.same({}, hub.sent)
        hub.limit(key, 5)
        f.advance(websocket.RETRY_MS / 1000)
        assert.same({ connAck = { channelLifetime = 100 } }, json.decode(hub.sent[1].text))
      end)

      it("closes the connection with 1008 for any other message", function()
        local id = connect()
        d:ws_message(key, id, "hello")
        assert.same({ key = key, id = id, code = 1008, reason = "expected connCheck or connAck" },
          hub.closed[1])
        deliver()
        assert.equal(1, #f.core.logged("info", "closed, expected connCheck or connAck (1008)"))
        enqueue(item("a", 1))
        assert.same({}, hub.sent)
      end)
    end)

    describe("connCheck from the server (I.3)", function()
      local function check_timers()
        local n = 0
        for _, t in ipairs(f.timer.pending()) do
          if t.ms == 30000 then
            n = n + 1
          end
        end
        return n
      end

      before_each(function()
        ctx.policy.ws_conncheck_interval = 30
      end)

      it("is sent every interval and closes an unanswered connection", function()
        local id = connect()
        assert.equal(1, check_timers())
        f.advance(30)
        assert.same({ connCheck = { checkInterval = 30, newChannelLifetime = 100 } },
          json.decode(hub.sent[1].text))
        d:ws_message(key, id, '{"connAck":{}}')
        f.advance(30)
        assert.equal(2, #hub.sent)
        f.advance(30)
        assert.same({ key = key, id = id, code = 1008, reason = "connCheck unanswered" },
          hub.closed[1])
        deliver()
        assert.equal(0, check_timers())
      end)

      it("keeps one timer per connection, cancelled when it goes", function()
        connect()
        connect()
        assert.equal(1, check_timers())
        hub.drop(key, "peer")
        deliver()
        assert.equal(0, check_timers())
      end)
    end)

    describe("the channel going (API.md 2)", function()
      it("closes the WebSocket with 1000 when the channel is deleted", function()
        local id = connect()
        channels.remove(ctx, key, channels.DELETED)
        assert.same({ key = key, id = id, code = 1000, reason = "channel deleted" }, hub.closed[1])
        deliver()
        assert.equal(1, #f.core.logged("info", "closed, channel deleted (1000)"))
      end)

      it("closes the WebSocket with 1000 when the channel expires", function()
        local id = connect()
        f.advance(101)
        assert.same({ key = key, id = id, code = 1000, reason = "channel expired" }, hub.closed[1])
      end)

      it("closes a connection opened for a channel deleted meanwhile", function()
        local id = hub.apply(key, websocket.upgrade(key, PROTOCOL))
        store.delete(ctx.db, key)
        d:ws_open(key, id)
        assert.same({ key = key, id = id, code = 1000, reason = "channel deleted" }, hub.closed[1])
      end)

      it("closes a connection opened for a channel that expired meanwhile", function()
        local id = hub.apply(key, websocket.upgrade(key, PROTOCOL))
        f.core.advance(100)
        d:ws_open(key, id)
        assert.equal(1, #hub.closed)
        assert.equal("channel expired", hub.closed[1].reason)
      end)
    end)

    it("tries again after a storage failure", function()
      enqueue(item("a", 1))
      local id = hub.apply(key, websocket.upgrade(key, PROTOCOL))
      d:ws_open(key, id)
      hub.drain(key)
      deliver()
      hub.sent = {}
      -- Stored without telling anyone, then the store fails on the read.
      store.enqueue(ctx.db, key, "b", "json", '{"b":{}}', fixture.T0)
      f.core.db.fail_with("database is locked")
      d:notify(key)
      f.core.db.fail_with(nil)
      assert.equal(1, #f.core.logged("error", "database is locked"))
      assert.same({}, hub.sent)
      f.advance(websocket.RETRY_MS / 1000)
      assert.same({ "b" }, messages())
    end)

    it("sends nothing without a hub", function()
      ctx.hub = nil
      enqueue(item("a", 1))
      d:ws_open(key, 1)
      assert.same({ "a" }, queued())
      assert.equal(0, d.tokens:size())
    end)
  end)
end)
