local fake_core = require("support.fake_core")
local fake_hub = require("support.fake_hub")
local fixture = require("nc.fixture")
local json = require("codec.json")
local router = require("router")
local api = require("nc.api")
local store = require("nc.store")
local percent = require("codec.percent")

local T0 = fixture.T0
local P = "http://nc.example:8080"
local BASE = "/notificationchannel/v1"
local TEL = "tel%3A%2B19585550100"
local ACR = "acr%3Apseudonym123"

describe("nc.api", function()
  local core, timer, hub, app_ctx, routes, removed

  before_each(function()
    core = fake_core.new({ seed = false, now = T0 })
    assert(core.db.exec("PRAGMA foreign_keys = ON"))
    timer = fixture.timer(core)
    app_ctx = fake_core.ctx(core)
    app_ctx.config = { channel_lifetime_min = 1 }
    app_ctx.timer = timer
    hub = fake_hub.new()
    app_ctx.hub = hub
    routes = router.new()
    for _, r in ipairs(api.routes(app_ctx)) do
      routes:add(r[1], r[2], r[3])
    end
    api.start(app_ctx)
    removed = {}
    -- Record removals, still telling the delivery side.
    local ctx = api.context(app_ctx)
    local deliver = ctx.on_channel_removed
    ctx.on_channel_removed = function(id, reason)
      removed[#removed + 1] = id
      deliver(id, reason)
    end
  end)
  after_each(function()
    core.db.close()
  end)

  -- Sends a request through the route table, as app.lua does.
  local function send(method, path, body, headers)
    local h = {}
    for k, v in pairs(headers or {}) do
      h[k:lower()] = v
    end
    if body ~= nil and type(body) ~= "string" then
      body = json.encode(body)
      h["content-type"] = h["content-type"] or "application/json"
    end
    local req = { method = method, path = path, query = "", headers = h, body = body or "" }
    local handler, params, allowed = routes:match(method, path)
    if not handler then
      return { status = params == "no method" and 405 or 404, allowed = allowed }
    end
    return handler(req, params)
  end

  local function decode(res)
    assert.equal("application/json", res.headers["Content-Type"])
    return assert(json.decode(res.body))
  end

  local function fault(res, status, id)
    assert.equal(status, res.status, res.body)
    local doc = decode(res).requestError
    local e = doc.serviceException or doc.policyException
    assert.equal(id, e.messageId)
    return e
  end

  local function create(user, channel, headers)
    return send("POST", BASE .. "/" .. (user or TEL) .. "/channels",
      { notificationChannel = channel or { channelType = "LongPolling" } }, headers)
  end

  local function created(user, channel)
    local res = create(user, channel)
    assert.equal(201, res.status, res.body)
    return decode(res).notificationChannel
  end

  local function path_of(url)
    return url:sub(#P + 1)
  end

  describe("routes", function()
    it("allows exactly the spec's methods on each resource", function()
      local cases = {
        { BASE .. "/u/channels", { "GET", "POST" } },                 -- 6.1.4, 6.1.6
        { BASE .. "/u/channels/c", { "GET", "DELETE" } },             -- 6.2.4, 6.2.5
        { BASE .. "/u/channels/c/channelLifetime", { "GET", "PUT" } }, -- 6.4.5, 6.4.6
        { BASE .. "/u/channels/c/notifications", { "POST" } },        -- 6.3.3, 6.3.4, 6.3.6
        { BASE .. "/u/channels/c/ws", { "GET" } },                     -- RFC 6455 4.1
        { BASE .. "/callbacks/cb", { "POST" } },
      }
      for _, case in ipairs(cases) do
        local res = send("PATCH", case[1])
        assert.equal(405, res.status)
        assert.same(case[2], res.allowed)
      end
    end)
  end)

  describe("POST channels", function()
    it("creates a LongPolling channel as in D.2, with defaults filled", function()
      local res = create(TEL, { clientCorrelator = "123", applicationTag = "myApp",
        channelType = "LongPolling", channelData = { maxNotifications = "1" },
        channelLifetime = "7200" })
      assert.equal(201, res.status, res.body)
      assert.equal("Accept", res.headers.Vary)
      local ch = decode(res).notificationChannel
      assert.equal(P .. BASE .. "/" .. TEL .. "/channels/id1", ch.resourceURL)
      assert.equal(ch.resourceURL, res.headers.Location)
      assert.same({
        clientCorrelator = "123", applicationTag = "myApp", channelType = "LongPolling",
        channelData = { channelURL = ch.resourceURL .. "/notifications",
          maxNotifications = 1, maxWaitTime = 30 },
        channelLifetime = 7200,
        callbackURL = P .. BASE .. "/callbacks/id2",
        resourceURL = ch.resourceURL,
      }, ch)
    end)

    it("creates a WebSockets channel with a ws channelURL", function()
      local ch = created(ACR, { channelType = "WebSockets" })
      assert.equal("ws://nc.example:8080" .. BASE .. "/" .. ACR .. "/channels/id1/ws",
        ch.channelData.channelURL)
      assert.same({ channelURL = ch.channelData.channelURL, maxNotifications = 10 },
        ch.channelData)
      assert.equal(3600, ch.channelLifetime)
      assert.is_nil(ch.clientCorrelator)
      assert.is_nil(ch.applicationTag)
    end)

    it("answers a repeated clientCorrelator with 200 and the first channel", function()
      local first = created(TEL, { channelType = "LongPolling", clientCorrelator = "c" })
      local res = create(TEL, { channelType = "LongPolling", clientCorrelator = "c" })
      assert.equal(200, res.status)
      assert.is_nil(res.headers.Location)
      assert.same(first, decode(res).notificationChannel)
      assert.equal(201, create(ACR, { channelType = "LongPolling", clientCorrelator = "c" }).status)
    end)

    it("creates from a form (C.1)", function()
      local res = send("POST", BASE .. "/" .. TEL .. "/channels",
        "clientCorrelator=123&applicationTag=my+App&channelType=LongPolling"
        .. "&maxNotifications=1&channelLifetime=7200",
        { ["Content-Type"] = "application/x-www-form-urlencoded" })
      assert.equal(201, res.status, res.body)
      local ch = decode(res).notificationChannel
      assert.equal("my App", ch.applicationTag)
      assert.equal(1, ch.channelData.maxNotifications)
      local ws = send("POST", BASE .. "/" .. TEL .. "/channels", "channelType=WebSockets",
        { ["Content-Type"] = "application/x-www-form-urlencoded" })
      local e = fault(ws, 403, "POL1023")
      assert.same({ "WebSockets", "LongPolling" }, e.variables)
    end)

    it("refuses OMAPush and NativeChannel with 403 POL1023", function()
      for _, t in ipairs({ "OMAPush", "NativeChannel" }) do
        local e = fault(create(TEL, { channelType = t }), 403, "POL1023")
        assert.same({ t, "LongPolling, WebSockets" }, e.variables)
      end
      assert.equal(0, #store.list(core.db, "tel:+19585550100", T0))
    end)

    it("refuses bad input with 400 SVC0002 naming the element", function()
      local cases = {
        { { channelType = "Pigeon" }, "channelType" },
        { { applicationTag = "x" }, "channelType" },
        { { channelType = "LongPolling", channelLifetime = -5 }, "channelLifetime" },
        { { channelType = "LongPolling", channelData = { maxNotifications = 0 } },
          "maxNotifications" },
        { { channelType = "LongPolling", channelData = { maxWaitTime = -1 } }, "maxWaitTime" },
        { { channelType = "WebSockets", channelData = { maxWaitTime = 1 } }, "maxWaitTime" },
        { { channelType = "LongPolling", channelData = { channelURL = "http://x" } },
          "channelURL" },
        { { channelType = "LongPolling", callbackURL = "http://x" }, "callbackURL" },
        { { channelType = "LongPolling", bogus = 1 }, "bogus" },
        { { channelType = "LongPolling", channelLifetime = "soon" }, "channelLifetime" },
      }
      for _, case in ipairs(cases) do
        local e = fault(create(TEL, case[1]), 400, "SVC0002")
        assert.truthy(e.variables[1]:find(case[2], 1, true), e.variables[1])
      end
    end)

    it("answers malformed JSON with 400, other media types with 415", function()
      local bad = send("POST", BASE .. "/" .. TEL .. "/channels", '{"notificationChannel":',
        { ["Content-Type"] = "application/json" })
      assert.equal(400, bad.status)
      fault(send("POST", BASE .. "/" .. TEL .. "/channels", "x",
        { ["Content-Type"] = "text/plain" }), 415, "SVC3002")
      fault(send("POST", BASE .. "/" .. TEL .. "/channels", ""), 400, "SVC0002")
      fault(send("POST", BASE .. "/" .. TEL .. "/channels", "",
        { ["Content-Type"] = "application/json" }), 400, "SVC0002")
    end)

    it("answers 406 when Accept fits nothing, creating nothing", function()
      local res = create(TEL, nil, { Accept = "text/html" })
      fault(res, 406, "SVC3003")
      assert.equal(0, #store.list(core.db, "tel:+19585550100", T0))
    end)

    it("answers 503 SVC2001 when the store fails, and logs why", function()
      core.db.fail_with("disk I/O error")
      fault(create(), 503, "SVC2001")
      assert.equal(1, #core.logged("error", "disk I/O error"))
      core.db.fail_with(nil)
    end)

    it("refuses a clientCorrelator or applicationTag over 256 characters", function()
      for _, name in ipairs({ "clientCorrelator", "applicationTag" }) do
        local e = fault(create(TEL, { channelType = "LongPolling", [name] = string.rep("x", 257) }),
          400, "SVC0002")
        assert.same({ name }, e.variables)
        -- 256 characters, even of several bytes each, are fine.
        local ch = created(TEL, { channelType = "LongPolling", [name] = string.rep("\u{e9}", 256) })
        assert.equal(string.rep("\u{e9}", 256), ch[name])
      end
      -- In XML and in a form as well.
      local xml_body = '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">'
        .. "<clientCorrelator>" .. string.rep("7", 257) .. "</clientCorrelator>"
        .. "<channelType>LongPolling</channelType></nc:notificationChannel>"
      local e = fault(send("POST", BASE .. "/" .. TEL .. "/channels", xml_body,
        { ["Content-Type"] = "application/xml" }), 400, "SVC0002")
      assert.same({ "clientCorrelator" }, e.variables)
      e = fault(send("POST", BASE .. "/" .. TEL .. "/channels",
        "channelType=LongPolling&applicationTag=" .. string.rep("a", 1000),
        { ["Content-Type"] = "application/x-www-form-urlencoded" }), 400, "SVC0002")
      assert.same({ "applicationTag" }, e.variables)
      assert.equal(2, #store.list(core.db, "tel:+19585550100", T0))
    end)

    describe("beyond max_channels_per_user", function()
      before_each(function()
        api.context(app_ctx).policy.max_channels_per_user = 2
      end)

      it("answers 403 POL0001 saying why, creating nothing", function()
        created(TEL, { channelType = "LongPolling", clientCorrelator = "a" })
        created(TEL, { channelType = "WebSockets" })
        local e = fault(create(TEL, { channelType = "LongPolling", clientCorrelator = "b" }),
          403, "POL0001")
        assert.same({ "too many notification channels for this user (limit 2)" }, e.variables)
        assert.equal(2, #store.list(core.db, "tel:+19585550100", T0))
        -- Per user: another user still creates.
        created(ACR)
      end)

      it("still answers a repeated clientCorrelator with 200", function()
        local first = created(TEL, { channelType = "LongPolling", clientCorrelator = "a" })
        created(TEL)
        local res = create(TEL, { channelType = "LongPolling", clientCorrelator = "a" })
        assert.equal(200, res.status, res.body)
        assert.same(first, decode(res).notificationChannel)
      end)

      it("counts live channels only: a deleted or expired one makes room", function()
        local a = created(TEL, { channelType = "LongPolling", channelLifetime = 10 })
        local b = created(TEL, { channelType = "LongPolling", channelLifetime = 100 })
        fault(create(TEL), 403, "POL0001")
        assert.equal(204, send("DELETE", path_of(b.resourceURL)).status)
        created(TEL, { channelType = "LongPolling", channelLifetime = 100 })
        fault(create(TEL), 403, "POL0001")
        -- Past its end, before any timer or request removed it.
        core.set_time(T0 + 11)
        created(TEL)
        fault(send("GET", path_of(a.resourceURL)), 404, "SVC3000")
      end)

      it("answers the refusal in XML when XML is asked for", function()
        created(TEL)
        created(TEL)
        local res = create(TEL, nil, { Accept = "application/xml" })
        assert.equal(403, res.status)
        assert.equal("application/xml", res.headers["Content-Type"])
        assert.truthy(res.body:find("<messageId>POL0001</messageId>", 1, true), res.body)
      end)
    end)
  end)

  describe("userIds no URL can name (RFC 3986 5.2.4 dot segments)", function()
    local DOTS = { ".", "..", "%2E", "%2e", "%2E%2E", "%2e%2E", ".%2E" }

    it("refuses them on create with 400 SVC0002 naming userId, creating nothing", function()
      for _, user in ipairs(DOTS) do
        local e = fault(create(user), 400, "SVC0002")
        assert.same({ "userId" }, e.variables)
      end
      assert.equal(0, #core.db.query("SELECT * FROM channels"))
    end)

    it("answers 404 on every other route under them", function()
      -- A channel stored under such a userId before it was refused stays
      -- unreachable too.
      for _, user in ipairs({ ".", ".." }) do
        assert(store.insert(core.db, { channel_id = "c" .. #user, user_id = user,
          channel_type = "LongPolling", max_notifications = 1, max_wait_time = 0,
          callback_id = "cb" .. #user, lifetime = 100, expires_at = T0 + 100, created_at = T0 }))
      end
      for _, user in ipairs(DOTS) do
        local c = "c" .. #percent.decode(user)
        local u = BASE .. "/" .. user .. "/channels"
        fault(send("GET", u), 404, "SVC3000")
        fault(send("GET", u .. "/" .. c), 404, "SVC3000")
        fault(send("DELETE", u .. "/" .. c), 404, "SVC3000")
        fault(send("GET", u .. "/" .. c .. "/channelLifetime"), 404, "SVC3000")
        fault(send("PUT", u .. "/" .. c .. "/channelLifetime", { notificationChannelLifetime = {} }),
          404, "SVC3000")
        fault(send("POST", u .. "/" .. c .. "/notifications", ""), 404, "SVC3000")
        fault(send("GET", u .. "/" .. c .. "/ws"), 404, "SVC3000")
      end
      assert.equal(2, #core.db.query("SELECT * FROM channels"))
    end)

    it("answers the 404 of a list in XML when XML is asked for", function()
      local res = send("GET", BASE .. "/%2E/channels", nil, { Accept = "application/xml" })
      assert.equal(404, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
    end)

    it("leaves userIds that merely hold dots alone", function()
      for _, user in ipairs({ "...", ".a", "a.", "acr%3A.." }) do
        assert.equal(201, create(user).status, user)
        assert.equal(200, send("GET", BASE .. "/" .. user .. "/channels").status)
      end
    end)

    it("never matches an empty userId segment", function()
      assert.equal(404, create("").status)
      assert.equal(404, send("GET", BASE .. "//channels").status)
    end)
  end)

  describe("GET channels", function()
    it("lists the user's channels, and only theirs", function()
      local a = created(TEL)
      local b = created(TEL, { channelType = "WebSockets" })
      created(ACR)
      local res = send("GET", BASE .. "/" .. TEL .. "/channels")
      assert.equal(200, res.status)
      local list = decode(res).notificationChannelList
      assert.same({ a, b }, list.notificationChannel)
      assert.equal(P .. BASE .. "/" .. TEL .. "/channels", list.resourceURL)
    end)

    it("lists none as an empty array", function()
      local res = send("GET", BASE .. "/nobody/channels")
      assert.equal(200, res.status)
      assert.truthy(res.body:find('"notificationChannel":[]', 1, true), res.body)
    end)

    it("answers 406 for an Accept it cannot meet", function()
      fault(send("GET", BASE .. "/" .. TEL .. "/channels", nil, { Accept = "image/png" }),
        406, "SVC3003")
    end)
  end)

  describe("a channel", function()
    local ch, path
    before_each(function()
      ch = created(TEL, { channelType = "LongPolling", channelLifetime = 100 })
      path = path_of(ch.resourceURL)
    end)

    it("reads it under its own user only", function()
      local res = send("GET", path)
      assert.equal(200, res.status)
      assert.same(ch, decode(res).notificationChannel)
      fault(send("GET", BASE .. "/" .. ACR .. "/channels/id1"), 404, "SVC3000")
      fault(send("DELETE", BASE .. "/" .. ACR .. "/channels/id1"), 404, "SVC3000")
      fault(send("GET", BASE .. "/" .. ACR .. "/channels/id1/channelLifetime"), 404, "SVC3000")
      fault(send("GET", BASE .. "/" .. TEL .. "/channels/nope"), 404, "SVC3000")
    end)

    it("deletes it with 204, after which it is gone everywhere", function()
      local res = send("DELETE", path)
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.same({ "id1" }, removed)
      fault(send("GET", path), 404, "SVC3000")
      fault(send("DELETE", path), 404, "SVC3000")
      fault(send("GET", path .. "/channelLifetime"), 404, "SVC3000")
      fault(send("POST", path_of(ch.callbackURL), { aNotification = {} }), 404, "SVC3000")
      assert.equal(0, #decode(send("GET", BASE .. "/" .. TEL .. "/channels"))
        .notificationChannelList.notificationChannel)
    end)

    it("deletes even when Accept fits nothing (204 has no body)", function()
      assert.equal(204, send("DELETE", path, nil, { Accept = "image/png" }).status)
    end)

    it("reads the remaining lifetime", function()
      core.advance(30.5)
      local res = send("GET", path .. "/channelLifetime")
      assert.equal(200, res.status)
      assert.same({ notificationChannelLifetime = { channelLifetime = 70 } }, decode(res))
    end)

    it("refreshes the lifetime with PUT, clamped and restarted", function()
      core.advance(50)
      local res = send("PUT", path .. "/channelLifetime",
        { notificationChannelLifetime = { channelLifetime = "7200" } })
      assert.equal(200, res.status, res.body)
      assert.same({ notificationChannelLifetime = { channelLifetime = 7200 } }, decode(res))
      core.advance(100)
      assert.equal(7100, decode(send("GET", path .. "/channelLifetime"))
        .notificationChannelLifetime.channelLifetime)
      assert.equal(7200, decode(send("GET", path)).notificationChannel.channelLifetime)
      res = send("PUT", path .. "/channelLifetime", { notificationChannelLifetime = {} })
      assert.equal(3600, decode(res).notificationChannelLifetime.channelLifetime)
      res = send("PUT", path .. "/channelLifetime",
        { notificationChannelLifetime = { channelLifetime = 1000000 } })
      assert.equal(86400, decode(res).notificationChannelLifetime.channelLifetime)
    end)

    it("refuses a bad lifetime body", function()
      fault(send("PUT", path .. "/channelLifetime",
        { notificationChannelLifetime = { channelLifetime = -1 } }), 400, "SVC0002")
      fault(send("PUT", path .. "/channelLifetime", { other = {} }), 400, "SVC0002")
      fault(send("PUT", path .. "/channelLifetime", "nope",
        { ["Content-Type"] = "text/plain" }), 415, "SVC3002")
      fault(send("PUT", path .. "/channelLifetime", "{",
        { ["Content-Type"] = "application/json" }), 400, "SVC0001")
    end)

    it("expires: 404 everywhere once the lifetime is over", function()
      timer.advance(99)
      assert.equal(200, send("GET", path).status)
      timer.advance(1.1)
      assert.same({ "id1" }, removed)
      fault(send("GET", path), 404, "SVC3000")
      fault(send("GET", path .. "/channelLifetime"), 404, "SVC3000")
      fault(send("POST", path_of(ch.callbackURL), { aNotification = {} }), 404, "SVC3000")
    end)

    it("expires on access even when the timer is late", function()
      core.advance(100)
      fault(send("GET", path), 404, "SVC3000")
      assert.same({ "id1" }, removed)
    end)

    it("polls on the LongPolling channelURL, 404 for other types (6.3.5)", function()
      local url = path_of(ch.channelData.channelURL)
      local res = send("POST", url, "", { ["Content-Type"] = "application/json" })
      assert.equal(200, res.status, res.body)
      assert.same({ key = "id1", timeout_ms = 30000 }, res.park)
      assert.equal('{"notificationList":[]}', res.body)
      local ws = created(TEL, { channelType = "WebSockets" })
      fault(send("POST", path_of(ws.resourceURL) .. "/notifications", ""), 404, "SVC3000")
      fault(send("POST", BASE .. "/" .. TEL .. "/channels/nope/notifications", ""), 404, "SVC3000")
      fault(send("POST", BASE .. "/" .. ACR .. "/channels/id1/notifications", ""), 404, "SVC3000")
    end)

    it("answers a poll with what the callbackURL received", function()
      assert.equal(204, send("POST", path_of(ch.callbackURL),
        '{"movieNotification": {"eventType": "MovieCreated"}}',
        { ["Content-Type"] = "application/json" }).status)
      local res = send("POST", path_of(ch.channelData.channelURL), "longPollingRequestParmeters=",
        { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/xml" })
      assert.equal(200, res.status, res.body)
      assert.equal("application/xml", res.headers["Content-Type"])
      assert.truthy(res.body:find("<movieNotification><eventType>MovieCreated</eventType>",
        1, true), res.body)
      assert.equal("integer", math.type(res.token))
    end)

    it("checks a poll's Accept and body like every other request", function()
      local url = path_of(ch.channelData.channelURL)
      fault(send("POST", url, "", { Accept = "text/html" }), 406, "SVC3003")
      fault(send("POST", url, "x", { ["Content-Type"] = "text/plain" }), 415, "SVC3002")
      local e = fault(send("POST", url, { longPollingRequestParameters = { wait = 1 } }),
        400, "SVC0002")
      assert.same({ "wait" }, e.variables)
      fault(send("POST", url, "{", { ["Content-Type"] = "application/json" }), 400, "SVC0001")
    end)

    it("ends a parked poll with 404 when the channel is deleted", function()
      local url = path_of(ch.channelData.channelURL)
      local res = send("POST", url, "")
      hub.apply("id1", res)
      assert.equal(204, send("DELETE", path).status)
      assert.equal(1, #hub.answers)
      local e = fault(hub.answers[1].res, 404, "SVC3000")
      assert.same({ url }, e.variables)
    end)

    it("restarts the lifetime with each poll", function()
      core.advance(60)
      send("POST", path_of(ch.channelData.channelURL), "")
      assert.equal(100, decode(send("GET", path .. "/channelLifetime"))
        .notificationChannelLifetime.channelLifetime)
    end)
  end)

  describe("the WebSocket channelURL (Appendix I)", function()
    local PROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"
    local ws, url
    before_each(function()
      ws = created(TEL, { channelType = "WebSockets" })
      url = ws.channelData.channelURL:match("^ws://nc%.example:8080(/.*)$")
    end)

    local function upgrade(path, headers)
      local h = { Upgrade = "websocket", Connection = "Upgrade",
        ["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==", ["Sec-WebSocket-Version"] = "13",
        ["Sec-WebSocket-Protocol"] = PROTOCOL }
      for k, v in pairs(headers or {}) do
        h[k] = v or nil
      end
      return send("GET", path or url, nil, h)
    end

    it("asks the core to upgrade, echoing the subprotocol", function()
      local res = upgrade(nil, { ["Sec-WebSocket-Protocol"] = "chat, " .. PROTOCOL })
      assert.same({ key = "id1", protocol = PROTOCOL }, res.upgrade)
    end)

    it("answers 404 for an unknown channel, another user's, or a LongPolling one", function()
      local lp = created(TEL)
      fault(upgrade(path_of(lp.resourceURL) .. "/ws"), 404, "SVC3000")
      fault(upgrade(BASE .. "/" .. ACR .. "/channels/id1/ws"), 404, "SVC3000")
      fault(upgrade(BASE .. "/" .. TEL .. "/channels/nope/ws"), 404, "SVC3000")
      assert.equal(204, send("DELETE", path_of(ws.resourceURL)).status)
      fault(upgrade(), 404, "SVC3000")
    end)

    it("answers 426 to a plain GET, 400 without the subprotocol, upgrading nothing", function()
      local res = send("GET", url)
      local e = fault(res, 426, "SVC0002")
      assert.same({ "Upgrade" }, e.variables)
      assert.equal("websocket", res.headers.Upgrade)
      assert.is_nil(res.upgrade)
      res = upgrade(nil, { ["Sec-WebSocket-Protocol"] = false })
      e = fault(res, 400, "SVC0002")
      assert.same({ "Sec-WebSocket-Protocol" }, e.variables)
      assert.is_nil(res.upgrade)
      res = upgrade(nil, { Accept = "application/xml", ["Sec-WebSocket-Protocol"] = "chat" })
      assert.equal(400, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
    end)

    it("upgrades whatever Accept says: only its errors are negotiated", function()
      assert.truthy(upgrade(nil, { Accept = "text/html" }).upgrade)
    end)
  end)

  describe("callbacks", function()
    local ch, cb
    before_each(function()
      ch = created(TEL)
      cb = path_of(ch.callbackURL)
    end)

    local function queued()
      return store.queued(core.db, "id1")
    end

    it("stores one notification with 204", function()
      local res = send("POST", cb, '{"movieNotification": {"eventType": "MovieCreated"}}',
        { ["Content-Type"] = "application/json" })
      assert.equal(204, res.status, res.body)
      local q = queued()
      assert.equal(1, #q)
      assert.equal("movieNotification", q[1].root)
      assert.equal("json", q[1].format)
    end)

    it("stores each notification of a list, in order", function()
      local res = send("POST", cb, json.encode({ notificationList = json.array({
        { aNotification = { n = 1 } }, { bNotification = { n = 2 } } }) }),
        { ["Content-Type"] = "application/json" })
      assert.equal(204, res.status, res.body)
      local q = queued()
      assert.same({ "aNotification", "bNotification" }, { q[1].root, q[2].root })
    end)

    it("answers 400 for a body that is no notification, storing nothing", function()
      for _, body in ipairs({ "[1,2]", '"x"', "{}", '{"a":1,"b":2}', '{"notificationList":[]}' }) do
        local res = send("POST", cb, body, { ["Content-Type"] = "application/json" })
        assert.equal(400, res.status, body)
      end
      assert.equal(400, send("POST", cb, "{", { ["Content-Type"] = "application/json" }).status)
      fault(send("POST", cb, "x", { ["Content-Type"] = "text/plain" }), 415, "SVC3002")
      assert.equal(0, #queued())
    end)

    describe("beyond max_callback_notifications", function()
      before_each(function()
        api.context(app_ctx).policy.max_callback_notifications = 3
      end)

      local function list_of(n)
        local items = json.array()
        for i = 1, n do
          items[i] = { aNotification = { n = i } }
        end
        return { notificationList = items }
      end

      it("stores a list of exactly the limit", function()
        assert.equal(204, send("POST", cb, list_of(3)).status)
        assert.equal(3, #queued())
      end)

      it("refuses a longer list with 400 SVC0003 naming the bound, storing nothing", function()
        local e = fault(send("POST", cb, list_of(4)), 400, "SVC0003")
        assert.same({ "notificationList", "at most 3 notifications" }, e.variables)
        local xml_list = '<nc:notificationList xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">'
          .. string.rep("<a/>", 4) .. "</nc:notificationList>"
        e = fault(send("POST", cb, xml_list, { ["Content-Type"] = "application/xml" }),
          400, "SVC0003")
        assert.same({ "notificationList", "at most 3 notifications" }, e.variables)
        assert.equal(0, #queued())
      end)

      it("answers the refusal in XML when XML is asked for", function()
        local res = send("POST", cb, list_of(4), { Accept = "application/xml" })
        assert.equal(400, res.status)
        assert.equal("application/xml", res.headers["Content-Type"])
        assert.truthy(res.body:find("<messageId>SVC0003</messageId>", 1, true), res.body)
      end)
    end)

    describe("beyond max_queued_notifications", function()
      before_each(function()
        api.context(app_ctx).policy.max_queued_notifications = 2
      end)

      it("answers 503 SVC2001 with Retry-After, storing nothing, until the queue drains", function()
        assert.equal(204, send("POST", cb, { aNotification = { n = 1 } }).status)
        local list = { notificationList = json.array({ { aNotification = { n = 2 } },
          { aNotification = { n = 3 } } }) }
        local res = send("POST", cb, list)
        fault(res, 503, "SVC2001")
        assert.equal("60", res.headers["Retry-After"])
        assert.equal(1, #queued())
        assert.equal(204, send("POST", cb, { aNotification = { n = 2 } }).status)
        res = send("POST", cb, { aNotification = { n = 3 } }, { Accept = "application/xml" })
        assert.equal(503, res.status)
        assert.equal("application/xml", res.headers["Content-Type"])
        assert.equal("60", res.headers["Retry-After"])
        assert.truthy(res.body:find("<messageId>SVC2001</messageId>", 1, true), res.body)
        assert.equal(2, #queued())
        assert.equal(2, #core.logged("warn", "queue full"))
        -- A refusal is no storage failure: nothing is logged as an error.
        assert.same({}, core.logged("error"))
        local q = queued()
        store.dequeue(core.db, "id1", { q[1].seq, q[2].seq })
        assert.equal(204, send("POST", cb, list).status)
        assert.equal(2, #queued())
      end)
    end)

    it("answers 404 for an unknown callbackId", function()
      fault(send("POST", BASE .. "/callbacks/nope", { aNotification = {} }), 404, "SVC3000")
      fault(send("POST", BASE .. "/callbacks/id1", { aNotification = {} }), 404, "SVC3000")
    end)

    it("drops the queue with the channel", function()
      assert.equal(204, send("POST", cb, { aNotification = {} }).status)
      assert.equal(1, #queued())
      assert.equal(204, send("DELETE", path_of(ch.resourceURL)).status)
      assert.equal(0, #queued())
      fault(send("POST", cb, { aNotification = {} }), 404, "SVC3000")
    end)
  end)

  describe("XML", function()
    it("creates and reads a channel in XML (6.1.5.1)", function()
      local body = '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"'
        .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. "<clientCorrelator>123</clientCorrelator><channelType>LongPolling</channelType>"
        .. '<channelData xsi:type="nc:LongPollingData"><maxNotifications>1</maxNotifications>'
        .. "</channelData><channelLifetime>7200</channelLifetime></nc:notificationChannel>"
      local res = send("POST", BASE .. "/" .. TEL .. "/channels", body,
        { ["Content-Type"] = "application/xml", Accept = "application/xml" })
      assert.equal(201, res.status, res.body)
      assert.equal("application/xml", res.headers["Content-Type"])
      assert.truthy(res.body:find('xsi:type="nc:LongPollingData"', 1, true), res.body)
      assert.truthy(res.body:find("<channelLifetime>7200</channelLifetime>", 1, true))
      res = send("GET", BASE .. "/" .. TEL .. "/channels/id1", nil, { Accept = "application/xml" })
      assert.equal(200, res.status)
      assert.truthy(res.body:find("<clientCorrelator>123</clientCorrelator>", 1, true))
    end)

    it("answers errors in XML when XML is asked for", function()
      local res = send("GET", BASE .. "/" .. TEL .. "/channels/nope", nil,
        { Accept = "application/xml" })
      assert.equal(404, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
      assert.truthy(res.body:find("SVC3000", 1, true))
    end)
  end)

  describe("in the app", function()
    it("is mounted by app.lua, with the router's 405s", function()
      local app_core = fake_core.install({ seed = false })
      package.loaded.app = nil
      local app = require("app")
      local res = app.handle({ method = "POST", path = BASE .. "/" .. TEL .. "/channels",
        query = "", headers = { ["content-type"] = "application/json" },
        body = '{"notificationChannel":{"channelType":"WebSockets"}}' })
      assert.equal(201, res.status, res.body)
      res = app.handle({ method = "PUT", path = BASE .. "/" .. TEL .. "/channels",
        query = "", headers = {}, body = "" })
      assert.equal(405, res.status)
      assert.equal("GET, POST", res.headers.Allow)
      app_core.db.close()
      package.loaded.app = nil
      package.loaded.core = nil
    end)
  end)

  describe("start", function()
    it("refuses a config that makes no sense", function()
      local bad = fake_core.ctx(core)
      bad.config = { channel_lifetime_min = 0 }
      assert.has_error(function()
        api.routes(bad)
      end)
    end)

    it("works without a timer (the app spec's fake core has none)", function()
      local bare = fake_core.ctx(core)
      bare.config = {}
      api.routes(bare)
      api.start(bare)
    end)
  end)
end)
