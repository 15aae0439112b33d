local fake_core = require("support.fake_core")
local json = require("codec.json")
local xml = require("codec.xml")

-- A fresh app over a fresh fake core: app.lua reads core when loaded.
local function load_app(opts)
  local core = fake_core.install(opts)
  package.loaded.app = nil
  return require("app"), core
end

local function request(method, path, body, query)
  return {
    method = method,
    path = path,
    query = query or "",
    headers = body and { ["content-type"] = "application/json" } or {},
    body = body or "",
  }
end

local function exception(res)
  assert.equal("application/json", res.headers["Content-Type"])
  return json.decode(res.body).requestError.serviceException
end

describe("app", function()
  local app, core
  before_each(function()
    app, core = load_app()
  end)
  after_each(function()
    core.db.close()
    package.loaded.core = nil
    package.loaded.app = nil
  end)

  it("answers GET /health", function()
    local res = app.handle(request("GET", "/health"))
    assert.equal(200, res.status)
    assert.same({ status = "ok" }, json.decode(res.body))
  end)

  it("routes to the movies handlers with URLs from core.config", function()
    local res = app.handle(request("GET", "/movies/v1/movies/24"))
    assert.equal(200, res.status)
    assert.equal("http://nc.example:8080/movies/v1/movies/24",
      json.decode(res.body).movie.resourceURL)
  end)

  describe("unknown paths", function()
    for _, path in ipairs({ "/", "/nope", "/movies/v1", "/movies/v1/movies/",
      "/movies/v1/movies/24/", "/movies/v2/movies", "/health/", "/movies/v1/movies/1/x" }) do
      it("answers 404 SVC3000 for " .. path, function()
        local res = app.handle(request("GET", path))
        assert.equal(404, res.status)
        local e = exception(res)
        assert.equal("SVC3000", e.messageId)
        assert.equal("Resource %1 not found", e.text)
        assert.same({ path }, e.variables)
        assert.is_nil(res.headers.Allow)
      end)
    end
  end)

  describe("known paths with a method they lack", function()
    local cases = {
      { "PUT", "/movies/v1/movies", "GET, POST" },
      { "PATCH", "/movies/v1/movies", "GET, POST" },
      { "DELETE", "/movies/v1/movies", "GET, POST" },
      { "POST", "/movies/v1/movies/24", "GET, PUT, PATCH, DELETE" },
      { "OPTIONS", "/movies/v1/movies/24", "GET, PUT, PATCH, DELETE" },
      { "POST", "/health", "GET" },
      { "DELETE", "/health", "GET" },
    }
    for _, case in ipairs(cases) do
      local method, path, allow = case[1], case[2], case[3]
      it("answers 405 to " .. method .. " " .. path .. " with Allow: " .. allow, function()
        local res = app.handle(request(method, path, "{}"))
        assert.equal(405, res.status)
        assert.equal(allow, res.headers.Allow)
        local e = exception(res)
        assert.equal("SVC3001", e.messageId)
        assert.same({ method, allow }, e.variables)
      end)
    end

    it("answers 405 even for an id that names no movie", function()
      assert.equal(405, app.handle(request("POST", "/movies/v1/movies/abc")).status)
    end)
  end)

  describe("404 and 405 in the format Accept asks for", function()
    local NC = "/notificationchannel/v1/tel%3A%2B1/channels"

    local function with_accept(method, path, accept)
      local req = request(method, path)
      req.headers.accept = accept
      return app.handle(req)
    end

    -- The XML requestError of OMA NC 6.1.5.7: its messageId and variables.
    local function xml_exception(res)
      assert.equal("application/xml", res.headers["Content-Type"])
      local root = assert(xml.parse(res.body))
      assert.equal("requestError", root.localname)
      assert.equal("urn:oma:xml:rest:netapi:common:1", root.ns)
      local ex = xml.elements(root)[1]
      assert.equal("serviceException", ex.localname)
      local id, variables = nil, {}
      for _, el in ipairs(xml.elements(ex)) do
        if el.localname == "messageId" then
          id = xml.text(el)
        elseif el.localname == "variables" then
          variables[#variables + 1] = xml.text(el)
        end
      end
      return id, variables
    end

    for _, accept in ipairs({ "application/xml", "text/xml",
        "application/json;q=0.5, application/xml" }) do
      it("answers an unknown path in XML for Accept: " .. accept, function()
        for _, path in ipairs({ NC .. "/", NC .. "/c/other", "/nope" }) do
          local res = with_accept("GET", path, accept)
          assert.equal(404, res.status)
          local id, variables = xml_exception(res)
          assert.equal("SVC3000", id)
          assert.same({ path }, variables)
          assert.equal("Accept", res.headers.Vary)
        end
      end)

      it("answers a 405 in XML with the same Allow for Accept: " .. accept, function()
        for _, case in ipairs({ { "PUT", NC, "GET, POST" },
            { "POST", NC .. "/c", "GET, DELETE" }, { "DELETE", "/health", "GET" } }) do
          local res = with_accept(case[1], case[2], accept)
          assert.equal(405, res.status)
          assert.equal(case[3], res.headers.Allow)
          local id, variables = xml_exception(res)
          assert.equal("SVC3001", id)
          assert.same({ case[1], case[3] }, variables)
        end
      end)
    end

    for _, accept in ipairs({ "image/png", "application/xml;q=0" }) do
      it("answers in JSON, never 406, when nothing acceptable: " .. accept, function()
        local res = with_accept("GET", NC .. "/", accept)
        assert.equal(404, res.status)
        assert.equal("SVC3000", exception(res).messageId)
        res = with_accept("PATCH", NC, accept)
        assert.equal(405, res.status)
        assert.equal("GET, POST", res.headers.Allow)
        assert.equal("SVC3001", exception(res).messageId)
      end)
    end

    it("answers in JSON when Accept prefers it or allows anything", function()
      for _, accept in ipairs({ "*/*", "application/json", "application/xml;q=0.5, application/json" }) do
        assert.equal("SVC3000", exception(with_accept("GET", "/nope", accept)).messageId)
      end
    end)
  end)

  describe("HEAD", function()
    it("is answered by the GET handler (the core drops the body)", function()
      local get = app.handle(request("GET", "/movies/v1/movies/24"))
      local head = app.handle(request("HEAD", "/movies/v1/movies/24"))
      assert.same(get, head)
      assert.equal(200, app.handle(request("HEAD", "/health")).status)
      assert.equal(200, app.handle(request("HEAD", "/movies/v1/movies", nil, "limit=1")).status)
    end)

    it("gets the same 404 as GET", function()
      assert.equal(404, app.handle(request("HEAD", "/nope")).status)
      assert.equal(404, app.handle(request("HEAD", "/movies/v1/movies/9999")).status)
    end)
  end)

  it("does not double the slash of a public_url ending in /", function()
    core.db.close()
    app, core = load_app({ public_url = "https://movies.example/" })
    local res = app.handle(request("GET", "/movies/v1/movies", nil, "limit=1"))
    assert.equal("https://movies.example/movies/v1/movies",
      json.decode(res.body).movieList.resourceURL)
  end)

  describe("held connections (core/script.h events)", function()
    local NC = "/notificationchannel/v1/tel%3A%2B1/channels"
    local PROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"

    before_each(function()
      core.db.close()
      app, core = load_app({ seed = false, hub = true })
    end)

    local function create(channel_type)
      local res = app.handle(request("POST", NC,
        '{"notificationChannel":{"channelType":"' .. channel_type .. '"}}'))
      assert.equal(201, res.status, res.body)
      return json.decode(res.body).notificationChannel
    end

    local function path(url)
      return url:match("^%a+://nc%.example:8080(/.*)$")
    end

    local function notify(ch, body)
      local res = app.handle(request("POST", path(ch.callbackURL), body))
      assert.equal(204, res.status, res.body)
    end

    it("exports ws_open, ws_message, gone and written", function()
      for _, name in ipairs({ "ws_open", "ws_message", "gone", "written" }) do
        assert.is_function(app[name], name)
      end
    end)

    it("pushes notifications on a WebSocket and settles them once written", function()
      local ch = create("WebSockets")
      local req = request("GET", path(ch.channelData.channelURL))
      req.headers = { upgrade = "websocket", ["sec-websocket-protocol"] = PROTOCOL }
      local res = app.handle(req)
      assert.same({ key = "id1", protocol = PROTOCOL }, res.upgrade)
      local id = core.hub.apply("id1", res)
      app.ws_open("id1", id)
      notify(ch, '{"movieNotification":{"eventType":"MovieCreated"}}')
      assert.equal('{"notificationList":[{"movieNotification":{"eventType":"MovieCreated"}}]}',
        core.hub.sent[1].text)
      core.hub.drain("id1")
      assert.equal(1, core.hub.deliver(app))
      assert.equal(0, core.db.query("SELECT count(*) AS n FROM outbox")[1].n)
      app.ws_message("id1", id, '{"connCheck":{}}')
      assert.equal('{"connAck":{"channelLifetime":3600}}', core.hub.sent[2].text)
      core.hub.drop("id1", "peer", 1001)
      core.hub.deliver(app)
      assert.equal(1, #core.logged("info", "closed, peer (1001)"))
    end)

    it("answers a parked long poll when a notification arrives", function()
      local ch = create("LongPolling")
      local res = app.handle(request("POST", path(ch.channelData.channelURL), "{}"))
      assert.equal(30000, res.park.timeout_ms)
      core.hub.apply("id1", res)
      notify(ch, '{"movieNotification":{"eventType":"MovieDeleted"}}')
      local answer = core.hub.answers[1]
      assert.equal(200, answer.res.status)
      assert.same({ notificationList = { { movieNotification = { eventType = "MovieDeleted" } } } },
        json.decode(answer.res.body))
      core.hub.answered(true)
      core.hub.deliver(app)
      assert.equal(0, core.db.query("SELECT count(*) AS n FROM outbox")[1].n)
    end)

    it("works without a core.hub, as before the core had one", function()
      core.db.close()
      app, core = load_app({ seed = false })
      local ch = create("LongPolling")
      assert.truthy(app.handle(request("POST", path(ch.channelData.channelURL), "{}")).park)
      notify(ch, '{"movieNotification":{}}')
      app.gone("id1", 1, "timeout", 0)
      app.written(1, true)
    end)
  end)

  it("serves a whole create, read, change, delete cycle", function()
    local res = app.handle(request("POST", "/movies/v1/movies",
      '{"movie":{"title":"Nosferatu","premiereDate":"1922-03-04","director":"F. W. Murnau"}}'))
    assert.equal(201, res.status)
    local path = res.headers.Location:match("^http://nc%.example:8080(/.*)$")
    assert.equal("/movies/v1/movies/87", path)

    core.advance(1)
    res = app.handle(request("PATCH", path, '{"movie":{"genre":"Horror"}}'))
    assert.equal(200, res.status)
    local m = json.decode(app.handle(request("GET", path)).body).movie
    assert.equal("Horror", m.genre)
    assert.equal("2025-11-28T12:00:01.000Z", m.lastModified)
    assert.equal(1, #core.logged("info", "movie 87 MovieUpdated: genre"))

    assert.equal(204, app.handle(request("DELETE", path)).status)
    assert.equal(404, app.handle(request("GET", path)).status)
  end)
end)
