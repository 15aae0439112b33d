local fixture = require("nc.fixture")
local structure = require("support.structure")
local channels = require("nc.channels")
local conncheck = require("nc.conncheck")
local json = require("codec.json")
local store = require("nc.store")
local xml = require("codec.xml")

local NC = "urn:oma:xml:rest:netapi:notificationchannel:1"

local function nc_xml(root, inner)
  return '<nc:' .. root .. ' xmlns:nc="' .. NC .. '">' .. (inner or "") .. "</nc:" .. root .. ">"
end

describe("nc.conncheck", function()
  describe("parse", function()
    it("reads connCheck and connAck in JSON and XML", function()
      local cases = {
        { '{"connCheck":{"checkInterval":30}}', "connCheck", "json", { checkInterval = 30 } },
        { '{"connCheck":{}}', "connCheck", "json", {} },
        { ' {"connCheck": null} ', "connCheck", "json", {} },
        { '{"connAck":{}}', "connAck", "json", {} },
        { nc_xml("connCheck", "<checkInterval>15</checkInterval>"), "connCheck", "xml",
          { checkInterval = 15 } },
        { '<?xml version="1.0"?>\n<nc:connAck xmlns:nc="' .. NC .. '"/>', "connAck", "xml", {} },
      }
      for _, case in ipairs(cases) do
        local msg = assert(conncheck.parse(case[1]))
        assert.same({ root = case[2], format = case[3], value = case[4] }, msg)
      end
    end)

    it("reads, to ignore them, the lifetimes a client must not send", function()
      assert.same({ newChannelLifetime = 7200 },
        assert(conncheck.parse('{"connCheck":{"newChannelLifetime":7200}}')).value)
      assert.same({ channelLifetime = 5 },
        assert(conncheck.parse('{"connAck":{"channelLifetime":5}}')).value)
    end)

    it("names what was expected for anything else", function()
      for _, text in ipairs({ "hello", "", "  ", "{}", "[1]", "null", '{"connCheck":{},"x":{}}',
          '{"notificationList":[]}', '{"connAck":1', "<connCheck/>",
          '<nc:connAck xmlns:nc="urn:other"/>', nc_xml("notificationList"), "<a", "<!DOCTYPE x><x/>" }) do
        local msg, reason = conncheck.parse(text)
        assert.is_nil(msg, text)
        assert.equal(conncheck.EXPECTED, reason, text)
      end
    end)

    it("names the element of a connCheck or connAck that is wrong", function()
      local cases = {
        { '{"connCheck":{"checkInterval":"soon"}}', "invalid connCheck: checkInterval" },
        { '{"connCheck":{"bogus":1}}', "invalid connCheck: bogus" },
        { '{"connAck":"x"}', "invalid connAck: connAck" },
        { nc_xml("connCheck", "<checkInterval>x</checkInterval>"), "invalid connCheck: checkInterval" },
      }
      for _, case in ipairs(cases) do
        local msg, reason = conncheck.parse(case[1])
        assert.is_nil(msg)
        assert.equal(case[2], reason)
        assert.is_true(#reason <= 123, "RFC 6455 5.5.1: a close reason fits in 123 bytes")
      end
    end)
  end)

  describe("messages (5.2.2.11, 5.2.2.12)", function()
    it("writes connAck in JSON and XML", function()
      assert.equal('{"connAck":{"channelLifetime":3600}}', conncheck.ack("json", 3600))
      local text = conncheck.ack("xml", 3600)
      assert.equal(xml.DECLARATION .. '<nc:connAck xmlns:nc="' .. NC .. '"'
        .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. "<channelLifetime>3600</channelLifetime></nc:connAck>", text)
      assert.same(structure.xml(nc_xml("connAck", "<channelLifetime>3600</channelLifetime>")),
        structure.xml(text))
    end)

    it("writes connCheck in JSON and XML", function()
      assert.equal('{"connCheck":{"checkInterval":30,"newChannelLifetime":600}}',
        conncheck.check("json", 30, 600))
      assert.same(structure.xml(nc_xml("connCheck",
        "<checkInterval>30</checkInterval><newChannelLifetime>600</newChannelLifetime>")),
        structure.xml(conncheck.check("xml", 30, 600)))
    end)

    it("reads back what it writes", function()
      for _, format in ipairs({ "json", "xml" }) do
        assert.same({ root = "connAck", format = format, value = { channelLifetime = 9 } },
          conncheck.parse(conncheck.ack(format, 9)))
        assert.same({ root = "connCheck", format = format,
          value = { checkInterval = 1, newChannelLifetime = 2 } },
          conncheck.parse(conncheck.check(format, 1, 2)))
      end
    end)
  end)

  describe("on a connection", function()
    local f, ctx, row, conn, ws

    before_each(function()
      f = fixture.new({ config = { channel_lifetime_min = 1, ws_conncheck_interval = 30 } })
      ctx = f.ctx
      row = channels.create(ctx, "tel:+1", { channel_type = "WebSockets", lifetime = 100 })
      conn = { key = row.channel_id, id = 7, format = "json", control = {} }
      -- What conncheck asks of nc/websocket.lua, recorded.
      ws = { controls = {}, closes = {} }
      function ws:control(c, slot, text, queued)
        self.controls[#self.controls + 1] = { conn = c, slot = slot, text = text, queued = queued }
      end
      function ws:close(c, code, reason)
        self.closes[#self.closes + 1] = { conn = c, code = code, reason = reason }
      end
    end)
    after_each(function()
      f.close()
    end)

    -- The connCheck timers pending (the expiry timer is there too).
    local function check_timers()
      local n = 0
      for _, t in ipairs(f.timer.pending()) do
        if t.ms == 30000 then
          n = n + 1
        end
      end
      return n
    end

    local function remaining()
      return channels.remaining(store.by_id(ctx.db, row.channel_id), ctx.now())
    end

    it("answers a connCheck with connAck and restarts the lifetime (I.3)", function()
      f.advance(40)
      assert.equal(60, remaining())
      conncheck.receive(ctx, ws, conn, '{"connCheck":{"checkInterval":10}}')
      assert.equal(100, remaining())
      assert.equal(1, #ws.controls)
      assert.equal("ack", ws.controls[1].slot)
      assert.same({ connAck = { channelLifetime = 100 } }, json.decode(ws.controls[1].text))
      assert.same({}, ws.closes)
    end)

    it("answers in the format of the connCheck, and remembers it", function()
      conncheck.receive(ctx, ws, conn, nc_xml("connCheck"))
      assert.equal("xml", conn.format)
      assert.same({ root = "connAck", format = "xml", value = { channelLifetime = 100 } },
        conncheck.parse(ws.controls[1].text))
    end)

    it("ignores a newChannelLifetime from the client", function()
      conncheck.receive(ctx, ws, conn, '{"connCheck":{"newChannelLifetime":5000}}')
      assert.same({ connAck = { channelLifetime = 100 } }, json.decode(ws.controls[1].text))
      assert.equal(100, remaining())
    end)

    it("closes with 1008 on anything else, naming what was expected", function()
      conncheck.receive(ctx, ws, conn, '{"hello":{}}')
      assert.same({ { conn = conn, code = 1008, reason = conncheck.EXPECTED } }, ws.closes)
      assert.same({}, ws.controls)
      assert.equal(1, #f.core.logged("info", "closing, expected connCheck or connAck"))
    end)

    it("sends nothing for a channel that expired (its removal closes the connection)", function()
      local removed = {}
      ctx.on_channel_removed = function(id, reason)
        removed[#removed + 1] = reason
      end
      f.core.advance(100)
      conncheck.receive(ctx, ws, conn, '{"connCheck":{}}')
      assert.same({}, ws.controls)
      assert.same({ "expired" }, removed)
    end)

    it("logs a store failure and answers nothing", function()
      f.core.db.fail_with("disk I/O error")
      conncheck.receive(ctx, ws, conn, '{"connCheck":{}}')
      f.core.db.fail_with(nil)
      assert.same({}, ws.controls)
      assert.equal(1, #f.core.logged("error", "disk I/O error"))
    end)

    describe("the server's connChecks", function()
      it("sends one per interval in the client's format, offering the lifetime", function()
        conncheck.start(ctx, ws, conn)
        assert.equal(1, check_timers())
        f.advance(30)
        assert.equal(1, #ws.controls)
        assert.equal("check", ws.controls[1].slot)
        assert.same({ connCheck = { checkInterval = 30, newChannelLifetime = 100 } },
          json.decode(ws.controls[1].text))
        conn.format = "xml"
        ws.controls[1].queued()
        conncheck.receive(ctx, ws, conn, nc_xml("connAck"))
        f.advance(30)
        assert.same({ root = "connCheck", format = "xml",
          value = { checkInterval = 30, newChannelLifetime = 100 } },
          conncheck.parse(ws.controls[2].text))
      end)

      it("restarts the lifetime with the offered value on connAck", function()
        conncheck.start(ctx, ws, conn)
        assert(channels.refresh(ctx, row, 50))
        f.advance(30)
        ws.controls[1].queued()
        assert.equal(50, conn.awaiting)
        -- The lifetime was changed meanwhile; the connAck restarts the
        -- one the connCheck offered.
        assert(channels.refresh(ctx, row, 1000))
        f.advance(5)
        conncheck.receive(ctx, ws, conn, '{"connAck":{"channelLifetime":99999}}')
        assert.is_nil(conn.awaiting)
        assert.equal(50, remaining())
        assert.equal(50, store.by_id(ctx.db, row.channel_id).lifetime)
      end)

      it("ignores a connAck nothing asked for", function()
        f.advance(10)
        conncheck.receive(ctx, ws, conn, '{"connAck":{}}')
        assert.equal(90, remaining())
        assert.same({}, ws.controls)
        assert.same({}, ws.closes)
      end)

      it("closes with 1008 when the previous connCheck is unanswered at the next", function()
        conncheck.start(ctx, ws, conn)
        f.advance(30)
        ws.controls[1].queued()
        f.advance(30)
        assert.same({ { conn = conn, code = 1008, reason = "connCheck unanswered" } }, ws.closes)
        assert.equal(1, #ws.controls)
        assert.equal(1, #f.core.logged("info", "closing, connCheck unanswered"))
      end)

      it("does not count a connCheck still waiting for the send window", function()
        conncheck.start(ctx, ws, conn)
        f.advance(30)
        f.advance(30)
        assert.same({}, ws.closes)
        assert.equal(2, #ws.controls)
      end)

      it("stops with the connection", function()
        conncheck.start(ctx, ws, conn)
        assert.equal(1, check_timers())
        conncheck.stop(ctx, conn)
        assert.equal(0, check_timers())
        assert.is_nil(conn.check_timer)
        f.advance(100)
        assert.same({}, ws.controls)
        conncheck.stop(ctx, conn)
      end)

      it("is off with interval 0 (the default) or without a timer", function()
        ctx.policy.ws_conncheck_interval = 0
        conncheck.start(ctx, ws, conn)
        assert.equal(0, check_timers())
        ctx.policy.ws_conncheck_interval = 30
        ctx.timer = nil
        conncheck.start(ctx, ws, conn)
        assert.is_nil(conn.check_timer)
      end)
    end)
  end)
end)
