local fixture = require("nc.fixture")
local fx = require("fixtures.nc_fixtures")
local structure = require("support.structure")
local callbacks = require("nc.callbacks")
local channels = require("nc.channels")
local delivery = require("nc.delivery")
local json = require("codec.json")
local poll = require("nc.poll")
local store = require("nc.store")

local JSON = "application/json"
local XML = "application/xml"
local FORM = "application/x-www-form-urlencoded"
local PATH = "/notificationchannel/v1/tel%3A%2B1/channels/id1/notifications"

describe("nc.poll", function()
  local f, ctx, hub, d, row, sink

  before_each(function()
    f = fixture.new({ config = { channel_lifetime_min = 1 } })
    ctx, hub = f.ctx, f.hub
    d = delivery.new(ctx)
    sink = {
      written = function(token, ok) d:written(token, ok) end,
      gone = function(...) d:gone(...) end,
    }
    row = channels.create(ctx, "tel:+1", { channel_type = "LongPolling",
      max_notifications = 2, max_wait_time = 20, lifetime = 100 })
  end)
  after_each(function()
    f.close()
  end)

  local function request(body, content_type)
    return { method = "POST", path = PATH, query = "",
      headers = { ["content-type"] = content_type }, body = body or "" }
  end

  -- A poll as the core runs it: app.handle, then the core acts on res.
  local function poll_now(format, req)
    local res, err, detail = d:handle_poll(req or request(), row, format or "json")
    if res and res.park then
      hub.apply(row.channel_id, res)
    elseif res then
      hub.respond(row.channel_id, res)
    end
    return res, err, detail
  end

  local function deliver(ok)
    hub.answered(ok)
    return hub.deliver(sink)
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

  local function roots(res)
    local out = {}
    for _, i in ipairs(structure.items(res.body, res.headers["Content-Type"])) do
      out[#out + 1] = i.root
    end
    return out
  end

  local function queued()
    local out = {}
    for _, r in ipairs(store.queued(ctx.db, row.channel_id)) do
      out[#out + 1] = r.root
    end
    return out
  end

  local function fault(res, status, id)
    assert.equal(status, res.status, res.body)
    local e = json.decode(res.body).requestError.serviceException
    assert.equal(id, e.messageId)
    return e
  end

  describe("decode (5.2.2.9, C.2, D.12)", function()
    local ok_cases = {
      { "", nil },
      { "", JSON },
      { "{}", JSON },
      { " { } ", "application/json; charset=utf-8" },
      { fx.load("D.12-request.json"), JSON },
      { '{"longPollingRequestParameters":{}}', JSON },
      { fx.load("6.3.5.1-request.xml"), XML },
      { fx.load("C.2.1-request.form"), FORM },
      { "longPollingRequestParameters=", FORM },
    }
    for _, case in ipairs(ok_cases) do
      it("accepts " .. (case[1] == "" and "an empty body" or case[1]), function()
        assert.same({}, assert(poll.decode(request(case[1], case[2]))))
      end)
    end

    it("refuses anything else with SVC0002 naming the element", function()
      local cases = {
        { '{"longPollingRequestParameters":{"maxNotifications":1}}', JSON, "maxNotifications" },
        { '{"longPollingRequestParameters":"x"}', JSON, "longPollingRequestParameters" },
        { '{"poll":{}}', JSON, "longPollingRequestParameters" },
        { "[]", JSON, "longPollingRequestParameters" },
        { '<nc:notificationList xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"/>', XML,
          "longPollingRequestParameters" },
        { '<nc:longPollingRequestParameters xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">'
          .. "<x>1</x></nc:longPollingRequestParameters>", XML, "x" },
        { "wait=1", FORM, "wait" },
      }
      for _, case in ipairs(cases) do
        local v, err = poll.decode(request(case[1], case[2]))
        assert.is_nil(v, case[1])
        assert.equal("SVC0002", err.id, case[1])
        assert.same({ case[3] }, err.variables, case[1])
      end
    end)

    it("refuses malformed bodies with SVC0001 and other media types with 415", function()
      local _, err = poll.decode(request("{", JSON))
      assert.equal("SVC0001", err.id)
      _, err = poll.decode(request("<a", XML))
      assert.equal("SVC0001", err.id)
      _, err = poll.decode(request("x", "text/plain"))
      assert.equal("SVC3002", err.id)
      assert.equal(415, err.status)
    end)
  end)

  describe("with notifications waiting", function()
    it("answers at once, oldest first, at most maxNotifications, with a token", function()
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      local res = poll_now()
      assert.equal(200, res.status)
      assert.is_nil(res.park)
      assert.equal("integer", math.type(res.token))
      assert.same({ "a", "b" }, roots(res))
      assert.equal("Accept", res.headers.Vary)
      assert.equal(1, #f.core.logged("info", "answered with 2 notification(s)"))
    end)

    it("removes them from the outbox only once written", function()
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      poll_now()
      assert.same({ "a", "b", "c" }, queued())
      deliver(true)
      assert.same({ "c" }, queued())
      assert.same({ "c" }, roots(poll_now()))
    end)

    it("keeps them for the next poll when the answer was lost", function()
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      poll_now()
      deliver(false)
      assert.same({ "a", "b", "c" }, queued())
      assert.same({ "a", "b" }, roots(poll_now()))
    end)

    it("does not give notifications in flight to another poll", function()
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      poll_now()
      assert.same({ "c" }, roots(poll_now()))
      local res = poll_now()
      assert.truthy(res.park, "nothing left that is not in flight")
    end)

    it("converts to the format asked for (C.2.1: a form poll answered in XML)", function()
      assert(callbacks.enqueue(ctx, row, assert(require("codec.notification").split(
        fx.request(XML, fx.load("6.3.5.1-response.xml"))))))
      local res = poll_now("xml", request(fx.load("C.2.1-request.form"), FORM))
      assert.equal(200, res.status)
      assert.equal(XML, res.headers["Content-Type"])
      assert.same(structure.xml(fx.load("C.2.1-response.xml")), structure.xml(res.body))
      assert.same(structure.xml(fx.load("6.3.5.1-response.xml")), structure.xml(res.body))
    end)

    it("answers D.12's JSON poll with D.12's list, the XML notification converted", function()
      assert(callbacks.enqueue(ctx, row, assert(require("codec.notification").split(
        fx.request(XML, fx.load("6.3.5.1-response.xml"))))))
      local res = poll_now("json", request(fx.load("D.12-request.json"), JSON))
      assert.equal(JSON, res.headers["Content-Type"])
      assert.same(structure.items(fx.load("D.12-response.json"), JSON), structure.items(res.body, JSON))
    end)

    it("drops, with an error line, a notification that cannot be converted", function()
      enqueue(item("a", 1), item("b", 2))
      local bad = store.queued(ctx.db, row.channel_id)[1].seq
      assert(ctx.db.exec("UPDATE outbox SET body = 'x' WHERE seq = ?", bad))
      local res = poll_now("xml")
      assert.same({ "b" }, roots(res))
      assert.same({ "b" }, queued())
      assert.equal(1, #f.core.logged("error", "dropped 1 notification(s)"))
    end)
  end)

  describe("with nothing waiting", function()
    it("parks for maxWaitTime, the timeout answer an empty list (6.3.5.3, D.14)", function()
      local res = poll_now()
      assert.same({ key = row.channel_id, timeout_ms = 20000 }, res.park)
      assert.equal(200, res.status)
      assert.equal('{"notificationList":[]}', res.body)
      assert.is_nil(res.token)
      assert.equal(1, #f.core.logged("info", "parked for 20 s"))
      hub.timeout(row.channel_id)
      deliver()
      assert.equal(1, #f.core.logged("info", "ended (timeout)"))
      assert.equal(0, #hub.answers)
    end)

    it("parks with an XML timeout answer when XML was asked for", function()
      local res = poll_now("xml", request(fx.load("6.3.5.3-request.xml"), XML))
      assert.truthy(res.park)
      assert.equal(XML, res.headers["Content-Type"])
      assert.same(structure.xml(fx.load("6.3.5.3-response.xml")), structure.xml(res.body))
    end)

    it("caps the wait by today's policy", function()
      ctx.policy.max_wait_time_max = 5
      assert.equal(5000, poll_now().park.timeout_ms)
    end)

    it("answers at once with an empty list when maxWaitTime is 0", function()
      row = channels.create(ctx, "tel:+1", { channel_type = "LongPolling", max_wait_time = 0 })
      local res = poll_now()
      assert.is_nil(res.park)
      assert.equal('{"notificationList":[]}', res.body)
      assert.is_nil(res.token)
    end)

    it("answers the parked poll when notifications arrive, up to maxNotifications", function()
      poll_now("xml")
      enqueue(item("a", 1), item("b", 2), item("c", 3))
      assert.equal(1, #hub.answers)
      local a = hub.answers[1]
      assert.equal(200, a.res.status)
      assert.equal(XML, a.res.headers["Content-Type"])
      assert.same({ "a", "b" }, roots(a.res))
      assert.equal("integer", math.type(a.token))
      assert.is_nil(hub.held(row.channel_id))
      deliver(true)
      assert.same({ "c" }, queued())
      -- Nothing is parked now: a later notification waits for a poll.
      enqueue(item("d", 4))
      assert.equal(1, #hub.answers)
      assert.same({ "c", "d" }, roots(poll_now()))
    end)

    it("answers the parked poll with notifications whose answer was lost", function()
      enqueue(item("a", 1))
      poll_now()
      local parked = poll_now()
      assert.truthy(parked.park)
      deliver(false)
      assert.equal(1, #hub.answers)
      assert.same({ "a" }, roots(hub.answers[1].res))
    end)

    it("logs a store failure while answering, and answers on the next notification", function()
      poll_now()
      store.enqueue(ctx.db, row.channel_id, "a", "json", '{"a":{}}', fixture.T0)
      f.core.db.fail_with("database is locked")
      d:notify(row.channel_id)
      f.core.db.fail_with(nil)
      assert.equal(1, #f.core.logged("error", "database is locked"))
      assert.equal(0, #hub.answers)
      assert.equal("parked", hub.held(row.channel_id))
      enqueue(item("b", 2))
      assert.same({ "a", "b" }, roots(hub.answers[1].res))
    end)

    it("lets a timed-out poll go: later notifications wait", function()
      poll_now()
      hub.timeout(row.channel_id)
      deliver()
      enqueue(item("a", 1))
      assert.equal(0, #hub.answers)
      assert.same({ "a" }, queued())
    end)

    it("works without a hub: parks, and notifications wait", function()
      ctx.hub = nil
      assert.truthy(poll_now().park)
      enqueue(item("a", 1))
      assert.same({ "a" }, queued())
    end)
  end)

  describe("a second poll (OMA NC 5, 7.1.1)", function()
    it("ends the parked one with 409 SVC1012 in its own format, then is served", function()
      poll_now("xml")
      local res = poll_now("json")
      assert.equal(1, #hub.answers)
      local first = hub.answers[1].res
      assert.equal(409, first.status)
      assert.equal(XML, first.headers["Content-Type"])
      assert.truthy(first.body:find("<messageId>SVC1012</messageId>", 1, true), first.body)
      assert.truthy(res.park)
      assert.equal("parked", hub.held(row.channel_id))
      assert.equal(1, #f.core.logged("info", "ended with 409 SVC1012"))
      enqueue(item("a", 1))
      assert.equal(2, #hub.answers)
      assert.equal(JSON, hub.answers[2].res.headers["Content-Type"])
    end)

    it("ends the parked one even when it is answered at once", function()
      poll_now()
      -- Rows stored without telling the delivery side (a restart, say).
      store.enqueue(ctx.db, row.channel_id, "a", "json", '{"a":{}}', fixture.T0)
      local res = poll_now()
      assert.equal(409, hub.answers[1].res.status)
      assert.same({ "a" }, roots(res))
    end)

    it("keeps the newer poll when the older one's gone comes late", function()
      poll_now()
      hub.drop(row.channel_id, "peer")
      poll_now()
      deliver()
      assert.equal(1, #f.core.logged("info", "ended (peer)"))
      enqueue(item("a", 1))
      assert.equal(1, #hub.answers)
      assert.equal(200, hub.answers[1].res.status)
    end)
  end)

  describe("the channel going", function()
    it("ends a parked poll with the 404 of an unknown channel when deleted", function()
      poll_now("xml")
      channels.remove(ctx, row.channel_id, channels.DELETED)
      assert.equal(1, #hub.answers)
      local res = hub.answers[1].res
      assert.equal(404, res.status)
      assert.equal(XML, res.headers["Content-Type"])
      assert.truthy(res.body:find("<messageId>SVC3000</messageId>", 1, true))
      assert.truthy(res.body:find("<variables>" .. PATH .. "</variables>", 1, true), res.body)
      assert.equal(1, #f.core.logged("info", "ended with 404, channel deleted"))
    end)

    it("ends a parked poll with 404 when the channel expires", function()
      poll_now()
      f.advance(101)
      assert.equal(1, #hub.answers)
      local e = fault(hub.answers[1].res, 404, "SVC3000")
      assert.same({ PATH }, e.variables)
      assert.equal(1, #f.core.logged("info", "ended with 404, channel expired"))
    end)

    it("answers nothing when no poll is parked", function()
      channels.remove(ctx, row.channel_id)
      assert.equal(0, #hub.answers)
    end)

    it("forgets notifications in flight: their written() settles nothing", function()
      enqueue(item("a", 1))
      poll_now()
      channels.remove(ctx, row.channel_id)
      assert.equal(1, deliver(true))
      assert.equal(0, f.count("outbox"))
    end)
  end)

  it("restarts the channel lifetime with each poll (6.3)", function()
    f.advance(60)
    assert.equal(40, channels.remaining(row, ctx.now()))
    poll_now()
    local stored = store.by_id(ctx.db, row.channel_id)
    assert.equal(100, channels.remaining(stored, ctx.now()))
    f.advance(99)
    assert.truthy(channels.find_by_id(ctx, row.channel_id))
  end)

  it("gives a channel gone meanwhile back as false, a store failure as SVC2001", function()
    local stale = { channel_id = "nope", lifetime = 100, max_notifications = 1, max_wait_time = 1 }
    assert.is_false(d:handle_poll(request(), stale, "json"))
    f.core.db.fail_with("disk I/O error")
    local res, err, detail = d:handle_poll(request(), row, "json")
    assert.is_nil(res)
    assert.equal("SVC2001", err.id)
    assert.equal("disk I/O error", detail)
    f.core.db.fail_with(nil)
  end)
end)
