local codec = require("movies.subscriptions.codec")
local json = require("codec.json")
local rep = require("codec.representation")

local URL = "http://nc.example:8080/notificationchannel/v1/callbacks/cb1"
local RES = "http://nc.example:8080/movies/v1/tel%3A%2B1/subscriptions/s1"
local NS = 'xmlns:mv="urn:ncserver:xml:movies:1"'

local function req(body, content_type)
  return { headers = { ["content-type"] = content_type }, body = body }
end

local function from_json(body)
  return codec.decode(req(body, "application/json"), "movieSubscription")
end

local function from_xml(body, content_type)
  return codec.decode(req(body, content_type or "application/xml"), "movieSubscription")
end

local function refused(id, name, value, err)
  assert.is_nil(value)
  assert.equal(id, err.id)
  if name then
    assert.same({ name }, err.variables)
  end
end

-- A full subscription value, as codec.decode gives it.
local FULL = {
  callbackReference = { notifyURL = URL, callbackData = "abc",
    notificationFormat = "XML" },
  filter = { movieId = { 1, 2 } },
  clientCorrelator = "c1",
  duration = 7200,
  resourceURL = RES,
}

describe("movies.subscriptions.codec", function()
  describe("JSON input", function()
    it("reads a full document", function()
      assert.same(FULL, from_json(json.encode({ movieSubscription = FULL })))
    end)

    it("reads a minimal one, with no filter", function()
      assert.same({ callbackReference = { notifyURL = URL } },
        from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "' .. URL .. '"}}}'))
    end)

    it("takes numeric strings and a single value where an array may stand", function()
      local v = from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "'
        .. URL .. '"}, "filter": {"movieId": "3"}, "duration": "7200",'
        .. ' "clientCorrelator": 123}}')
      assert.same({ 3 }, v.filter.movieId)
      assert.equal(7200, v.duration)
      assert.equal("123", v.clientCorrelator)
      v = from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "'
        .. URL .. '"}, "filter": {"movieId": ["1", 2, " 5 "]}}}')
      assert.same({ 1, 2, 5 }, v.filter.movieId)
      v = from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "'
        .. URL .. '"}, "filter": {"movieId": 4}}}')
      assert.same({ 4 }, v.filter.movieId)
    end)

    it("reads null as absent, and an empty filter as one without movieIds", function()
      local v = from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "'
        .. URL .. '", "callbackData": null}, "filter": null, "duration": null}}')
      assert.same({ callbackReference = { notifyURL = URL } }, v)
      v = from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "'
        .. URL .. '"}, "filter": {}}}')
      assert.same({ movieId = {} }, v.filter)
    end)

    it("keeps callbackData verbatim, whitespace and all", function()
      local v = from_json(json.encode({ movieSubscription = {
        callbackReference = { notifyURL = URL, callbackData = "  a\n<b> & \"c\"  " } } }))
      assert.equal("  a\n<b> & \"c\"  ", v.callbackReference.callbackData)
    end)

    it("accepts the trailing commas of the OMA examples", function()
      local v = from_json('{"movieSubscription": {"callbackReference": {"notifyURL": "'
        .. URL .. '",},},}')
      assert.equal(URL, v.callbackReference.notifyURL)
    end)

    it("names the element at fault with SVC0002", function()
      local function with(sub)
        return from_json(json.encode({ movieSubscription = sub }))
      end
      local cases = {
        { {}, "callbackReference" },
        { { callbackReference = {} }, "callbackReference.notifyURL" },
        { { callbackReference = "x" }, "callbackReference" },
        { { callbackReference = { notifyURL = URL, bogus = 1 } }, "callbackReference.bogus" },
        { { callbackReference = { notifyURL = URL }, zz = 1, aa = 2 }, "aa" },
        { { callbackReference = { notifyURL = { 1 } } }, "callbackReference.notifyURL" },
        { { callbackReference = { notifyURL = URL, callbackData = "a\1" } },
          "callbackReference.callbackData" },
        { { callbackReference = { notifyURL = URL, callbackData = { x = 1 } } },
          "callbackReference.callbackData" },
        { { callbackReference = { notifyURL = URL }, filter = { movieId = { "x" } } },
          "filter.movieId" },
        { { callbackReference = { notifyURL = URL }, filter = { movieId = { 1.5 } } },
          "filter.movieId" },
        { { callbackReference = { notifyURL = URL }, filter = { movieId = { 2 ^ 40 } } },
          "filter.movieId" },
        { { callbackReference = { notifyURL = URL }, filter = { movies = { 1 } } },
          "filter.movies" },
        { { callbackReference = { notifyURL = URL }, filter = { 1, 2 } }, "filter" },
        { { callbackReference = { notifyURL = URL }, duration = "soon" }, "duration" },
        { { callbackReference = { notifyURL = URL }, duration = 1.5 }, "duration" },
        { { callbackReference = { notifyURL = URL }, duration = true }, "duration" },
      }
      for _, case in ipairs(cases) do
        local v, err = with(case[1])
        refused("SVC0002", case[2], v, err)
      end
    end)

    it("needs the root element, alone", function()
      refused("SVC0002", "movieSubscription", from_json('{"subscription": {}}'))
      refused("SVC0002", "movieSubscription", from_json('[1]'))
      refused("SVC0002", "movieSubscription", from_json('"x"'))
      refused("SVC0002", "movieSubscription", from_json('{"movieSubscription": 5}'))
      refused("SVC0002", "movieSubscription", from_json('{"movieSubscription": [1]}'))
      refused("SVC0002", "extra", from_json('{"movieSubscription": {}, "extra": 1}'))
    end)

    it("answers malformed JSON with SVC0001", function()
      local v, err = from_json('{"movieSubscription": ')
      refused("SVC0001", nil, v, err)
      assert.equal(400, err.status)
    end)
  end)

  describe("XML input", function()
    local DOC = '<?xml version="1.0" encoding="UTF-8"?>\n'
      .. '<mv:movieSubscription ' .. NS .. '>'
      .. '<callbackReference><notifyURL>' .. URL .. '</notifyURL>'
      .. '<callbackData>abc</callbackData><notificationFormat>XML</notificationFormat>'
      .. '</callbackReference>'
      .. '<filter><movieId>1</movieId><movieId>2</movieId></filter>'
      .. '<clientCorrelator>c1</clientCorrelator><duration>7200</duration>'
      .. '<resourceURL>' .. RES .. '</resourceURL>'
      .. '</mv:movieSubscription>'

    it("reads a full document", function()
      assert.same(FULL, from_xml(DOC))
      assert.same(FULL, from_xml(DOC, "text/xml; charset=utf-8"))
    end)

    it("reads the same with whitespace between elements and around numbers", function()
      local v = from_xml('<mv:movieSubscription ' .. NS .. '>\n  <callbackReference>\n'
        .. '    <notifyURL> ' .. URL .. ' </notifyURL>\n  </callbackReference>\n'
        .. '  <filter><movieId> 7 </movieId></filter><duration>\n60\n</duration>\n'
        .. '</mv:movieSubscription>')
      assert.same({ callbackReference = { notifyURL = URL }, filter = { movieId = { 7 } },
        duration = 60 }, v)
    end)

    it("keeps callbackData verbatim, entities resolved", function()
      local v = from_xml('<mv:movieSubscription ' .. NS .. '><callbackReference>'
        .. '<notifyURL>' .. URL .. '</notifyURL>'
        .. '<callbackData>  a &amp; &lt;b&gt; "c" </callbackData>'
        .. '</callbackReference></mv:movieSubscription>')
      assert.equal('  a & <b> "c" ', v.callbackReference.callbackData)
    end)

    it("takes any prefix, or the default namespace on the root alone", function()
      local v = from_xml('<x:movieSubscription xmlns:x="urn:ncserver:xml:movies:1"'
        .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="a b">'
        .. '<callbackReference><notifyURL>' .. URL .. '</notifyURL></callbackReference>'
        .. '</x:movieSubscription>')
      assert.equal(URL, v.callbackReference.notifyURL)
      -- A default namespace would qualify the children too: refused.
      refused("SVC0002", "callbackReference", from_xml(
        '<movieSubscription xmlns="urn:ncserver:xml:movies:1"><callbackReference>'
        .. '<notifyURL>' .. URL .. '</notifyURL></callbackReference></movieSubscription>'))
    end)

    it("needs the root in the movies namespace", function()
      refused("SVC0002", "movieSubscription", from_xml('<movieSubscription/>'))
      refused("SVC0002", "movieSubscription", from_xml(
        '<nc:movieSubscription xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"/>'))
      refused("SVC0002", "movieSubscription", from_xml(
        '<mv:subscription ' .. NS .. '/>'))
    end)

    it("names the element at fault with SVC0002", function()
      local function sub(inner)
        return from_xml('<mv:movieSubscription ' .. NS .. '>' .. inner
          .. '</mv:movieSubscription>')
      end
      local ref = '<callbackReference><notifyURL>' .. URL .. '</notifyURL></callbackReference>'
      local cases = {
        { "", "callbackReference" },
        { "<callbackReference/>", "callbackReference.notifyURL" },
        { ref .. ref, "callbackReference" },
        { "<mv:callbackReference><notifyURL>x</notifyURL></mv:callbackReference>",
          "callbackReference" },
        { ref .. "<bogus/>", "bogus" },
        { ref .. "<duration>soon</duration>", "duration" },
        { ref .. "<duration><x/></duration>", "duration" },
        { ref .. '<duration unit="s">5</duration>', "duration" },
        { ref .. "<filter><movieId>x</movieId></filter>", "filter.movieId" },
        { ref .. '<filter all="1"/>', "filter.all" },
        { ref .. "text", "movieSubscription" },
        { "<callbackReference><notifyURL>" .. URL .. "</notifyURL>"
          .. "<callbackData>&#1;</callbackData></callbackReference>",
          "callbackReference.callbackData" },
      }
      for _, case in ipairs(cases) do
        local v, err = sub(case[1])
        assert.is_nil(v, case[1])
        if err.id == "SVC0001" then
          -- &#1; is not even well-formed XML 1.0: either refusal will do.
          assert.equal("callbackReference.callbackData", case[2])
        else
          refused("SVC0002", case[2], v, err)
        end
      end
    end)

    it("answers malformed XML and a DOCTYPE with SVC0001", function()
      refused("SVC0001", nil, from_xml('<mv:movieSubscription ' .. NS .. '>'))
      refused("SVC0001", nil, from_xml('<!DOCTYPE x [<!ENTITY a "b">]>'
        .. '<mv:movieSubscription ' .. NS .. '/>'))
      refused("SVC0001", nil, from_xml('<a:movieSubscription/>'))
    end)
  end)

  describe("requests", function()
    it("needs a body", function()
      refused("SVC0002", "movieSubscription", codec.decode(req("", "application/json"),
        "movieSubscription"))
      refused("SVC0002", "movieSubscription", codec.decode(req(" \n", nil),
        "movieSubscription"))
    end)

    it("answers other media types with 415", function()
      for _, ct in ipairs({ "text/plain", "application/x-www-form-urlencoded" }) do
        local v, err = codec.decode(req("x=1", ct), "movieSubscription")
        refused("SVC3002", nil, v, err)
        assert.equal(415, err.status)
        assert.same({ ct, "application/json, application/xml" }, err.variables)
      end
      local v, err = codec.decode(req("{}", nil), "movieSubscription")
      refused("SVC3002", nil, v, err)
      assert.same({ "(none)", "application/json, application/xml" }, err.variables)
    end)

    it("reads JSON whatever the Content-Type's parameters", function()
      local v = codec.decode(req('{"movieSubscription": {"callbackReference":'
        .. ' {"notifyURL": "u"}}}', "Application/JSON; charset=utf-8"), "movieSubscription")
      assert.equal("u", v.callbackReference.notifyURL)
    end)

    it("raises for a root it does not know (a bug in the caller)", function()
      assert.has_error(function()
        codec.decode(req("{}", "application/json"), "movie")
      end)
    end)
  end)

  describe("output", function()
    it("writes JSON as API.md 3 shows it, movieId numbers in an array", function()
      local body, ct = codec.encode("json", "movieSubscription", FULL)
      assert.equal("application/json", ct)
      assert.equal('{"movieSubscription":{"callbackReference":{"callbackData":"abc",'
        .. '"notificationFormat":"XML","notifyURL":"' .. URL .. '"},'
        .. '"clientCorrelator":"c1","duration":7200,"filter":{"movieId":[1,2]},'
        .. '"resourceURL":"' .. RES .. '"}}', body)
      body = codec.encode("json", "movieSubscription",
        { callbackReference = { notifyURL = URL }, filter = { movieId = { 9 } } })
      assert.equal('{"movieSubscription":{"callbackReference":{"notifyURL":"' .. URL
        .. '"},"filter":{"movieId":[9]}}}', body)
    end)

    it("writes an empty list as an empty array", function()
      local body = codec.encode("json", "movieSubscriptionList",
        { movieSubscription = {}, resourceURL = "http://x/l" })
      assert.equal('{"movieSubscriptionList":{"movieSubscription":[],'
        .. '"resourceURL":"http://x/l"}}', body)
      body = codec.encode("xml", "movieSubscriptionList",
        { movieSubscription = {}, resourceURL = "http://x/l" })
      assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n<mv:movieSubscriptionList '
        .. NS .. '><resourceURL>http://x/l</resourceURL></mv:movieSubscriptionList>', body)
    end)

    it("writes XML in schema order with unqualified children", function()
      local body, ct = codec.encode("xml", "movieSubscription", FULL)
      assert.equal("application/xml", ct)
      assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<mv:movieSubscription ' .. NS .. '>'
        .. '<callbackReference><notifyURL>' .. URL .. '</notifyURL>'
        .. '<callbackData>abc</callbackData><notificationFormat>XML</notificationFormat>'
        .. '</callbackReference>'
        .. '<filter><movieId>1</movieId><movieId>2</movieId></filter>'
        .. '<clientCorrelator>c1</clientCorrelator><duration>7200</duration>'
        .. '<resourceURL>' .. RES .. '</resourceURL>'
        .. '</mv:movieSubscription>', body)
    end)

    it("escapes text in XML", function()
      local body = codec.encode("xml", "movieSubscription",
        { callbackReference = { notifyURL = URL, callbackData = "a<b>&c\r" } })
      assert.truthy(body:find("<callbackData>a&lt;b&gt;&amp;c&#13;</callbackData>", 1, true))
    end)

    it("round-trips a value through JSON and XML", function()
      local values = {
        FULL,
        { callbackReference = { notifyURL = URL } },
        { callbackReference = { notifyURL = URL, callbackData = ' <x a="1"> & \'y\'\n ',
          notificationFormat = "JSON" }, filter = { movieId = { 3 } }, duration = 60 },
      }
      for _, v in ipairs(values) do
        local j = codec.encode("json", "movieSubscription", v)
        local x = codec.encode("xml", "movieSubscription", v)
        assert.same(v, from_json(j))
        assert.same(v, from_xml(x))
        -- And across: JSON in, XML out, XML in gives the same value.
        assert.same(v, from_xml(codec.encode("xml", "movieSubscription", from_json(j))))
      end
      local list = { movieSubscription = { FULL, { callbackReference = { notifyURL = URL } } },
        resourceURL = "http://x/l" }
      assert.same(list, codec.decode(req(codec.encode("xml", "movieSubscriptionList", list),
        "application/xml"), "movieSubscriptionList"))
      assert.same(list, codec.decode(req(codec.encode("json", "movieSubscriptionList", list),
        "application/json"), "movieSubscriptionList"))
    end)

    it("raises for a value that does not fit the schema (a bug in the caller)", function()
      assert.has_error(function()
        codec.encode("json", "movieSubscription", { callbackReference = { notifyURL = URL },
          bogus = 1 })
      end)
      assert.has_error(function()
        codec.encode("xml", "movieSubscription", { callbackReference = { notifyURL = URL },
          duration = "60" })
      end)
      assert.has_error(function()
        codec.encode("json", "movieSubscription", { callbackReference = { notifyURL = 5 } })
      end)
      assert.has_error(function()
        codec.encode("yaml", "movieSubscription", FULL)
      end)
      assert.has_error(function()
        codec.encode("json", "movie", FULL)
      end)
    end)

    it("builds responses with Content-Type, Vary: Accept and extra headers", function()
      local res = codec.response(201, "xml", "movieSubscription", FULL, { Location = RES })
      assert.equal(201, res.status)
      assert.same({ ["Content-Type"] = "application/xml", Vary = "Accept", Location = RES },
        res.headers)
      assert.equal(codec.encode("xml", "movieSubscription", FULL), res.body)
    end)

    it("negotiates and writes errors exactly as the channel API does", function()
      assert.equal(rep.negotiate, codec.negotiate)
      assert.equal(rep.error_response, codec.error_response)
    end)
  end)
end)
