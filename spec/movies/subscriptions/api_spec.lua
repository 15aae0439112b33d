local fake_core = require("support.fake_core")
local fixture = require("movies.subscriptions.fixture")
local codec = require("movies.subscriptions.codec")
local json = require("codec.json")
local xml = require("codec.xml")

local T0, P = fixture.T0, fixture.P
local USER, TEL = fixture.USER, fixture.USER_PATH
local OTHER, ACR = fixture.OTHER, fixture.OTHER_PATH
local BASE = "/movies/v1"
local NS = "urn:ncserver:xml:movies:1"

describe("movies.subscriptions.api", function()
  local f, ch
  before_each(function()
    f = fixture.new()
    f.start()
    ch = f.channel(USER)
  end)
  after_each(function()
    f.close()
  end)

  local function collection(user_path)
    return BASE .. "/" .. (user_path or TEL) .. "/subscriptions"
  end

  local function path_of(url)
    assert.equal(P, url:sub(1, #P))
    return url:sub(#P + 1)
  end

  local function decode(res)
    assert.equal("application/json", res.headers["Content-Type"], res.body)
    return assert(json.decode(res.body))
  end

  local function fault(res, status, id, name)
    assert.equal(status, res.status, res.body)
    local doc = decode(res).requestError
    local e = doc.serviceException or doc.policyException
    assert.equal(id, e.messageId)
    if name then
      assert.same({ name }, e.variables)
    end
    return e
  end

  local function subscription(over, ref)
    local s = { callbackReference = { notifyURL = f.callback_url(ch) } }
    for k, v in pairs(ref or {}) do
      s.callbackReference[k] = v
    end
    for k, v in pairs(over or {}) do
      s[k] = v
    end
    return { movieSubscription = s }
  end

  local function create(body, user_path, headers)
    return f.send("POST", collection(user_path), body or subscription(), headers)
  end

  local function created(body, user_path)
    local res = create(body, user_path)
    assert.equal(201, res.status, res.body)
    return decode(res).movieSubscription
  end

  describe("routes", function()
    it("allows exactly GET, POST on the list and GET, DELETE on a subscription", function()
      for _, m in ipairs({ "PUT", "PATCH", "DELETE" }) do
        local res = f.send(m, collection())
        assert.equal(405, res.status)
        assert.same({ "GET", "POST" }, res.allowed)
      end
      for _, m in ipairs({ "POST", "PUT", "PATCH" }) do
        local res = f.send(m, collection() .. "/s1")
        assert.equal(405, res.status)
        assert.same({ "GET", "DELETE" }, res.allowed)
      end
    end)

    it("are in the app, with Allow on every 405", function()
      local core = fake_core.install()
      package.loaded.app = nil
      local app = require("app")
      local function handle(method, path)
        return app.handle({ method = method, path = path, query = "",
          headers = { ["content-type"] = "application/json" }, body = "{}" })
      end
      local res = handle("PUT", collection())
      assert.equal(405, res.status)
      assert.equal("GET, POST", res.headers.Allow)
      res = handle("PATCH", collection() .. "/s1")
      assert.equal(405, res.status)
      assert.equal("GET, DELETE", res.headers.Allow)
      res = handle("GET", collection())
      assert.equal(200, res.status)
      assert.same({ movieSubscriptionList = { movieSubscription = {},
        resourceURL = P .. collection() } }, json.decode(res.body))
      assert.equal(404, handle("GET", collection() .. "/s1").status)
      -- The movies resource keeps its literal segment.
      assert.equal(404, handle("GET", BASE .. "/movies/subscriptions").status)
      assert.equal(404, handle("GET", collection() .. "/").status)
      core.db.close()
      package.loaded.core = nil
      package.loaded.app = nil
    end)
  end)

  describe("start", function()
    it("registers movieNotification for typed conversion (codec/notification)", function()
      local notification = require("codec.notification")
      local api = require("movies.subscriptions.api")
      local body = '<mv:movieNotification xmlns:mv="' .. NS .. '"><eventType>MovieCreated</eventType>'
        .. "<movie><movieId>12</movieId><title>T</title><premiereDate>2020-01-01</premiereDate>"
        .. "<lastModified>2020-01-01T00:00:00.000Z</lastModified><resourceURL>" .. P
        .. "/movies/v1/movies/12</resourceURL></movie><changedFields>title</changedFields>"
        .. '<link rel="MovieSubscription" href="' .. P .. '/s"/></mv:movieNotification>'
      local item = { root = "movieNotification", format = "xml", body = body }
      notification.register("movieNotification", nil)
      -- Generic: every value a string.
      assert.equal("12", json.decode(notification.to_json(item)).movieNotification.movie.movieId)
      api.start(f.app_ctx)
      local text = notification.to_json(item)
      assert.truthy(text:find('"movieId":12,', 1, true), text)
      assert.same({ "title" }, json.decode(text).movieNotification.changedFields)
    end)
  end)

  describe("POST", function()
    it("creates a subscription: 201, Location and the representation", function()
      local res = create(subscription({ filter = { movieId = { 2, 1, 2 } },
        clientCorrelator = "c1", duration = 7200 }, { callbackData = "abc",
        notificationFormat = "XML" }))
      assert.equal(201, res.status, res.body)
      assert.equal("Accept", res.headers.Vary)
      local s = decode(res).movieSubscription
      assert.equal(P .. collection() .. "/id3", s.resourceURL)
      assert.equal(s.resourceURL, res.headers.Location)
      assert.same({
        callbackReference = { notifyURL = f.callback_url(ch), callbackData = "abc",
          notificationFormat = "XML" },
        filter = { movieId = { 1, 2 } },
        clientCorrelator = "c1",
        duration = 7200,
        resourceURL = s.resourceURL,
      }, s)
    end)

    it("defaults to JSON notifications about every movie, for an hour", function()
      local res = create()
      assert.equal('{"movieSubscription":{"callbackReference":{"notificationFormat":"JSON",'
        .. '"notifyURL":"' .. f.callback_url(ch) .. '"},"duration":3600,'
        .. '"resourceURL":"' .. P .. collection() .. '/id3"}}', res.body)
    end)

    it("takes numeric strings and a single movieId", function()
      local s = created(subscription({ filter = { movieId = "7" }, duration = "120" }))
      assert.same({ movieId = { 7 } }, s.filter)
      assert.equal(120, s.duration)
    end)

    it("grants durations within policy", function()
      assert.equal(60, created(subscription({ duration = 10 })).duration)
      assert.equal(60, created(subscription({ duration = 0 })).duration)
      assert.equal(86400, created(subscription({ duration = 1000000 })).duration)
    end)

    it("reads and answers XML", function()
      local body = '<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<mv:movieSubscription xmlns:mv="' .. NS .. '">'
        .. '<callbackReference><notifyURL>' .. f.callback_url(ch) .. '</notifyURL>'
        .. '<callbackData>a &amp; b</callbackData>'
        .. '<notificationFormat>XML</notificationFormat></callbackReference>'
        .. '<filter><movieId>3</movieId><movieId>1</movieId></filter>'
        .. '<clientCorrelator>x1</clientCorrelator><duration>600</duration>'
        .. '</mv:movieSubscription>'
      local res = create(body, nil, { ["Content-Type"] = "application/xml",
        Accept = "application/xml" })
      assert.equal(201, res.status, res.body)
      assert.equal("application/xml", res.headers["Content-Type"])
      local url = P .. collection() .. "/id3"
      assert.equal(url, res.headers.Location)
      assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<mv:movieSubscription xmlns:mv="' .. NS .. '">'
        .. '<callbackReference><notifyURL>' .. f.callback_url(ch) .. '</notifyURL>'
        .. '<callbackData>a &amp; b</callbackData>'
        .. '<notificationFormat>XML</notificationFormat></callbackReference>'
        .. '<filter><movieId>1</movieId><movieId>3</movieId></filter>'
        .. '<clientCorrelator>x1</clientCorrelator><duration>600</duration>'
        .. '<resourceURL>' .. url .. '</resourceURL>'
        .. '</mv:movieSubscription>', res.body)
      -- The same subscription in JSON.
      local s = decode(f.send("GET", path_of(url)))
      assert.equal("a & b", s.movieSubscription.callbackReference.callbackData)
      assert.same({ 1, 3 }, s.movieSubscription.filter.movieId)
    end)

    it("reads JSON and answers XML, and the other way round", function()
      local res = create(nil, nil, { Accept = "application/xml" })
      assert.equal(201, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
      local node = assert(xml.parse(res.body))
      assert.equal(NS, node.ns)
      assert.equal("movieSubscription", node.localname)

      local body = codec.encode("xml", "movieSubscription", subscription().movieSubscription)
      res = create(body, nil, { ["Content-Type"] = "text/xml" })
      assert.equal(201, res.status, res.body)
      assert.equal("application/json", res.headers["Content-Type"])
    end)

    it("answers a repeated clientCorrelator with 200 and the first subscription", function()
      local first = create(subscription({ clientCorrelator = "c1", filter = { movieId = { 1 } } }))
      assert.equal(201, first.status)
      local again = create(subscription({ clientCorrelator = "c1", duration = 99999 }))
      assert.equal(200, again.status, again.body)
      assert.is_nil(again.headers.Location)
      assert.equal(first.body, again.body)
      assert.equal(1, f.count("movie_subscriptions"))
      -- The same correlator under another user is another subscription.
      local other = f.channel(OTHER)
      local res = create(subscription({ clientCorrelator = "c1" },
        { notifyURL = f.callback_url(other) }), ACR)
      assert.equal(201, res.status)
    end)

    it("refuses a notifyURL that is not the callbackURL of a live channel of the user", function()
      local other = f.channel(OTHER)
      local short = f.channel(USER, 5)
      f.core.set_time(T0 + 5)
      for _, url in ipairs({ f.callback_url(other), f.callback_url(short), "nonsense",
        "http://evil.example/notificationchannel/v1/callbacks/" .. ch.callback_id,
        P .. "/notificationchannel/v1/callbacks/unknown",
        P .. collection() }) do
        fault(create(subscription(nil, { notifyURL = url })), 400, "SVC0002",
          "callbackReference.notifyURL")
      end
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("refuses bad input with 400 SVC0002 naming the element", function()
      local cases = {
        { subscription({ filter = { movieId = { 999999 } } }), "filter.movieId" },
        { subscription({ filter = { movieId = { 0 } } }), "filter.movieId" },
        { subscription({ filter = { movieId = {} } }), "filter.movieId" },
        { subscription({ filter = { movieId = "x" } }), "filter.movieId" },
        { subscription(nil, { notificationFormat = "HTML" }),
          "callbackReference.notificationFormat" },
        { subscription(nil, { callbackData = "\27[1m" }), "callbackReference.callbackData" },
        { subscription({ resourceURL = P .. collection() .. "/x" }), "resourceURL" },
        { subscription({ duration = -1 }), "duration" },
        { subscription({ bogus = true }), "bogus" },
        { { movieSubscription = {} }, "callbackReference" },
        { { subscription = {} }, "movieSubscription" },
      }
      for _, case in ipairs(cases) do
        fault(create(case[1]), 400, "SVC0002", case[2])
      end
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("answers errors in the format asked for", function()
      local res = create(subscription({ duration = -1 }), nil, { Accept = "application/xml" })
      assert.equal(400, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
      local node = assert(xml.parse(res.body))
      assert.equal("requestError", node.localname)
      assert.truthy(res.body:find("<messageId>SVC0002</messageId>", 1, true))
      assert.truthy(res.body:find("<variables>duration</variables>", 1, true))
    end)

    it("answers malformed bodies with 400, other media types with 415", function()
      fault(create('{"movieSubscription":', nil, { ["Content-Type"] = "application/json" }),
        400, "SVC0001")
      fault(create('<mv:movieSubscription xmlns:mv="' .. NS .. '">', nil,
        { ["Content-Type"] = "application/xml" }), 400, "SVC0001")
      fault(create("", nil, { ["Content-Type"] = "application/json" }), 400, "SVC0002",
        "movieSubscription")
      fault(create("notifyURL=x", nil,
        { ["Content-Type"] = "application/x-www-form-urlencoded" }), 415, "SVC3002")
      fault(create("x", nil, { ["Content-Type"] = "text/plain" }), 415, "SVC3002")
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("caps clientCorrelator and callbackData, counted in characters, in JSON and XML", function()
      for _, case in ipairs({
        { "clientCorrelator", { clientCorrelator = string.rep("x", 257) } },
        { "callbackReference.callbackData", nil, { callbackData = string.rep("x", 1025) } },
        { "callbackReference.callbackData", nil, { callbackData = string.rep("x", 10 ^ 6 // 1) } },
      }) do
        fault(create(subscription(case[2], case[3])), 400, "SVC0002", case[1])
      end
      local xml_body = '<mv:movieSubscription xmlns:mv="' .. NS .. '"><callbackReference>'
        .. "<notifyURL>" .. f.callback_url(ch) .. "</notifyURL>"
        .. "<callbackData>" .. string.rep("&amp;", 1025) .. "</callbackData>"
        .. "</callbackReference></mv:movieSubscription>"
      fault(create(xml_body, nil, { ["Content-Type"] = "application/xml" }), 400, "SVC0002",
        "callbackReference.callbackData")
      assert.equal(0, f.count("movie_subscriptions"))
      -- At the caps, in characters of several bytes each: taken verbatim.
      local corr, data = string.rep("\u{e9}", 256), string.rep("\u{20ac}", 1024)
      local s = created(subscription({ clientCorrelator = corr }, { callbackData = data }))
      assert.equal(corr, s.clientCorrelator)
      assert.equal(data, s.callbackReference.callbackData)
    end)

    it("caps filter.movieId at 1000 distinct movies", function()
      -- Movies 1 to 1001 exist, so only the cap can refuse 1001 of them.
      f.rows("INSERT INTO movies (title, premiere_date, last_modified)"
        .. " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)"
        .. " SELECT 'Filler ' || i, '2026-01-01', '2026-01-01T00:00:00.000Z' FROM n")
      assert.equal(1001,
        f.rows("SELECT count(*) AS n FROM movies WHERE movie_id BETWEEN 1 AND 1001")[1].n)
      local ids = {}
      for i = 1, 1001 do
        ids[i] = i
      end
      fault(create(subscription({ filter = { movieId = ids } })), 400, "SVC0002",
        "filter.movieId")
      assert.equal(0, f.count("movie_subscriptions"))
      assert.equal(0, f.count("movie_fanout"))
      ids[1001] = 1000 -- a duplicate does not count
      local s = created(subscription({ filter = { movieId = ids } }))
      assert.equal(1000, #s.filter.movieId)
      assert.equal(1000, f.count("movie_fanout"))
    end)

    describe("beyond max_subscriptions_per_user", function()
      before_each(function()
        f.close()
        f = fixture.new({ config = { max_subscriptions_per_user = 2 } })
        f.start()
        ch = f.channel(USER)
      end)

      it("answers 403 POL0001 saying why, creating nothing", function()
        created(subscription({ clientCorrelator = "a" }))
        created(subscription({ filter = { movieId = { 1 } } }))
        local e = fault(create(subscription({ clientCorrelator = "b" })), 403, "POL0001")
        assert.same({ "too many movie subscriptions for this user (limit 2)" }, e.variables)
        assert.equal(2, f.count("movie_subscriptions"))
        local list = decode(f.send("GET", collection())).movieSubscriptionList
        assert.equal(2, #list.movieSubscription)
        -- Per user: another user still creates.
        local other = f.channel(OTHER)
        created(subscription(nil, { notifyURL = f.callback_url(other) }), ACR)
      end)

      it("still answers a repeated clientCorrelator with 200", function()
        local first = created(subscription({ clientCorrelator = "a" }))
        created()
        local res = create(subscription({ clientCorrelator = "a" }))
        assert.equal(200, res.status, res.body)
        assert.same(first, decode(res).movieSubscription)
      end)

      it("makes room when one is deleted or expires", function()
        local a = created(subscription({ duration = 60 }))
        local b = created(subscription({ duration = 600 }))
        fault(create(), 403, "POL0001")
        assert.equal(204, f.send("DELETE", path_of(b.resourceURL)).status)
        created(subscription({ duration = 600 }))
        fault(create(), 403, "POL0001")
        -- Past a's end, before any timer or request removed it.
        f.core.set_time(T0 + 60)
        created()
        fault(f.send("GET", path_of(a.resourceURL)), 404, "SVC3000")
      end)

      it("answers the refusal in XML when XML is asked for", function()
        created()
        created()
        local res = create(nil, nil, { Accept = "application/xml" })
        assert.equal(403, res.status)
        assert.equal("application/xml", res.headers["Content-Type"])
        assert.truthy(res.body:find("<policyException>", 1, true), res.body)
        assert.truthy(res.body:find("<messageId>POL0001</messageId>", 1, true), res.body)
      end)
    end)

    it("answers 406 when nothing acceptable can be produced, creating nothing", function()
      local e = fault(create(nil, nil, { Accept = "text/html" }), 406, "SVC3003")
      assert.same({ "text/html", "application/json, application/xml" }, e.variables)
      assert.equal(0, f.count("movie_subscriptions"))
    end)
  end)

  describe("GET list", function()
    it("is an empty array when there are none", function()
      local res = f.send("GET", collection())
      assert.equal(200, res.status)
      assert.equal("Accept", res.headers.Vary)
      assert.equal('{"movieSubscriptionList":{"movieSubscription":[],"resourceURL":"'
        .. P .. collection() .. '"}}', res.body)
    end)

    it("lists the user's live subscriptions, oldest first", function()
      local a = created(subscription({ filter = { movieId = { 5 } } }))
      local b = created(subscription({ duration = 60 }))
      local other = f.channel(OTHER)
      created(subscription(nil, { notifyURL = f.callback_url(other) }), ACR)
      local list = decode(f.send("GET", collection())).movieSubscriptionList
      assert.same({ a, b }, list.movieSubscription)
      assert.equal(P .. collection(), list.resourceURL)
      f.core.set_time(T0 + 60)
      list = decode(f.send("GET", collection())).movieSubscriptionList
      assert.same({ a }, list.movieSubscription)
      assert.equal(1, #decode(f.send("GET", collection(ACR))).movieSubscriptionList
        .movieSubscription)
    end)

    it("answers XML", function()
      created(subscription({ filter = { movieId = { 2 } } }))
      local res = f.send("GET", collection(), nil, { Accept = "application/xml" })
      assert.equal(200, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
      local list = codec.decode({ headers = { ["content-type"] = "application/xml" },
        body = res.body }, "movieSubscriptionList")
      assert.equal(1, #list.movieSubscription)
      assert.same({ 2 }, list.movieSubscription[1].filter.movieId)
      local empty = f.send("GET", collection(ACR), nil, { Accept = "application/xml" })
      assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n<mv:movieSubscriptionList'
        .. ' xmlns:mv="' .. NS .. '"><resourceURL>' .. P .. collection(ACR)
        .. '</resourceURL></mv:movieSubscriptionList>', empty.body)
    end)

    it("answers 406 for an Accept it cannot meet", function()
      fault(f.send("GET", collection(), nil, { Accept = "image/png" }), 406, "SVC3003")
    end)
  end)

  describe("GET and DELETE a subscription", function()
    it("reads it back as created", function()
      local s = created(subscription({ filter = { movieId = { 9, 4 } } }, { callbackData = "d" }))
      local res = f.send("GET", path_of(s.resourceURL))
      assert.equal(200, res.status)
      assert.same(s, decode(res).movieSubscription)
    end)

    it("answers only under its own user", function()
      local s = created()
      local id = s.resourceURL:match("[^/]+$")
      fault(f.send("GET", collection(ACR) .. "/" .. id), 404, "SVC3000")
      fault(f.send("DELETE", collection(ACR) .. "/" .. id), 404, "SVC3000")
      assert.equal(200, f.send("GET", path_of(s.resourceURL)).status)
      fault(f.send("GET", collection() .. "/nope"), 404, "SVC3000",
        collection() .. "/nope")
    end)

    it("deletes it: 204, then 404", function()
      local s = created(subscription({ filter = { movieId = { 1 } } }))
      local res = f.send("DELETE", path_of(s.resourceURL), nil, { Accept = "text/html" })
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.is_nil(res.headers["Content-Type"])
      fault(f.send("GET", path_of(s.resourceURL)), 404, "SVC3000")
      fault(f.send("DELETE", path_of(s.resourceURL)), 404, "SVC3000")
      assert.equal(0, f.count("movie_subscription_filter"))
      assert.equal(1, #f.core.logged("info", "deleted"))
    end)

    it("answers 404 everywhere once expired, and removes it", function()
      local s = created(subscription({ duration = 60 }))
      f.core.set_time(T0 + 60)
      fault(f.send("GET", path_of(s.resourceURL)), 404, "SVC3000")
      fault(f.send("DELETE", path_of(s.resourceURL)), 404, "SVC3000")
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("is removed by the timer at its end", function()
      local s = created(subscription({ duration = 60 }))
      f.advance(60.1)
      assert.equal(0, f.count("movie_subscriptions"))
      fault(f.send("GET", path_of(s.resourceURL)), 404, "SVC3000")
    end)

    it("goes with its channel", function()
      local s = created()
      local res = f.send("DELETE", "/notificationchannel/v1/" .. TEL .. "/channels/"
        .. ch.channel_id)
      assert.equal(204, res.status)
      fault(f.send("GET", path_of(s.resourceURL)), 404, "SVC3000")
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("answers errors in XML when asked", function()
      local res = f.send("GET", collection() .. "/nope", nil, { Accept = "application/xml" })
      assert.equal(404, res.status)
      assert.equal("application/xml", res.headers["Content-Type"])
      assert.truthy(res.body:find("<messageId>SVC3000</messageId>", 1, true))
    end)
  end)

  describe("userId", function()
    it("is percent-encoded in every URL and decoded before use", function()
      local other = f.channel(OTHER)
      local s = created(subscription(nil, { notifyURL = f.callback_url(other) }), ACR)
      assert.equal(P .. BASE .. "/acr%3Apseudonym123/subscriptions/" .. s.resourceURL:match("[^/]+$"),
        s.resourceURL)
      local stored = f.rows("SELECT user_id, resource_path FROM movie_subscriptions")[1]
      assert.equal(OTHER, stored.user_id)
      assert.equal(path_of(s.resourceURL), stored.resource_path)
      -- Lower-case hex names the same user.
      assert.equal(200, f.send("GET", path_of(s.resourceURL):gsub("%%3A", "%%3a")).status)
    end)

    it("may hold an encoded slash", function()
      local weird = f.channel("a/b")
      local s = created(subscription(nil, { notifyURL = f.callback_url(weird) }), "a%2Fb")
      assert.equal(P .. BASE .. "/a%2Fb/subscriptions/" .. s.resourceURL:match("[^/]+$"),
        s.resourceURL)
      assert.equal(200, f.send("GET", path_of(s.resourceURL)).status)
    end)
  end)

  describe("storage failures", function()
    it("answer 503 SVC2001 and log the detail", function()
      f.core.db.fail_with("disk I/O error")
      fault(create(), 503, "SVC2001")
      fault(f.send("GET", collection()), 503, "SVC2001")
      fault(f.send("GET", collection() .. "/x"), 503, "SVC2001")
      fault(f.send("DELETE", collection() .. "/x"), 503, "SVC2001")
      f.core.db.fail_with(nil)
      assert.equal(4, #f.core.logged("error", "disk I/O error"))
    end)
  end)
end)
