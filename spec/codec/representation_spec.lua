local rep = require("codec.representation")
local errors = require("codec.errors")
local json = require("codec.json")
local xml = require("codec.xml")
local fx = require("fixtures.nc_fixtures")

local JSON, XML, FORM = "application/json", "application/xml",
  "application/x-www-form-urlencoded"

local function req(content_type, body)
  return fx.request(content_type, body)
end

local function decode_ok(content_type, body, root, opts)
  local v, err = rep.decode(req(content_type, body), root, opts)
  assert.is_nil(err and errors.message(err))
  return v
end

local function decode_err(content_type, body, root, opts)
  local v, err = rep.decode(req(content_type, body), root, opts)
  assert.is_nil(v)
  assert.is_true(errors.is_error(err))
  return err
end

-- SVC0002 naming `part`.
local function assert_svc0002(part, err)
  assert.equal("SVC0002", err.id)
  assert.equal(400, err.status)
  assert.same({ part }, err.variables)
end

---------------------------------------------------------------------------
-- The normalised values of the spec's examples
---------------------------------------------------------------------------

local BASE = "http://example.com/exampleAPI/notificationchannel/v1/"
local TEL = BASE .. "tel%3A%2B19585550100/channels/"
local ACR = BASE .. "acr%3Apseudonym123/channels/"

local function merge(a, b)
  local out = {}
  for k, v in pairs(a) do out[k] = v end
  for k, v in pairs(b or {}) do out[k] = v end
  return out
end

local LP_REQUEST = {
  clientCorrelator = "123", applicationTag = "myApp", channelType = "LongPolling",
  channelData = { maxNotifications = 1 }, channelLifetime = 7200,
}
local LP_RESPONSE = merge(LP_REQUEST, {
  channelData = { channelURL = TEL .. "ch123/notifications", maxNotifications = 1 },
  callbackURL = "http://example.com/callBackUrl/cbu111",
  resourceURL = TEL .. "ch123",
})
local PUSH_REQUEST = {
  clientCorrelator = "987", applicationTag = "myApp", channelType = "OMAPush",
  channelData = { appId = "x-wap-application:wml.ua", maxNotifications = 1 },
  channelLifetime = 7200,
}
local PUSH_RESPONSE = merge(PUSH_REQUEST, {
  callbackURL = "http://example.com/callBackUrl/cbu222",
  resourceURL = TEL .. "ch987",
})
local LARGE = { pollingEnabled = true, maxPollingNotifications = 10 }
local PUSH_LARGE_REQUEST = merge(PUSH_REQUEST, {
  channelData = { appId = "x-wap-application:wml.ua", maxNotifications = 1,
    largeDataPolling = LARGE },
})
local PUSH_LARGE_RESPONSE = merge(PUSH_LARGE_REQUEST, {
  callbackURL = "http://example.com/callBackUrl/cbu222",
  resourceURL = TEL .. "ch987",
})
local ACR_RESPONSE = merge(LP_REQUEST, {
  channelData = { channelURL = ACR .. "ch123/notifications", maxNotifications = 1 },
  callbackURL = "http://example.com/callBackUrl/cbu111",
  resourceURL = ACR .. "ch123",
})
local WS_REQUEST = {
  clientCorrelator = "987", applicationTag = "myApp", channelType = "WebSockets",
  channelData = { maxNotifications = 5 }, channelLifetime = 7200,
}
local WS_RESPONSE = merge(WS_REQUEST, {
  channelData = { channelURL = "ws://example.com/exampleAPI/notificationchannel/v1/"
    .. "tel%3A%2B19585550100/channels/ch378/ws", maxNotifications = 5 },
  channelLifetime = 3600,
  callbackURL = "http://example.com/callBackUrl/cbu112",
  resourceURL = TEL .. "ch378",
})
local NATIVE_REQUEST = {
  clientCorrelator = "987", applicationTag = "myApp", channelType = "NativeChannel",
  channelData = { channelSubType = "GCM", registrationToken = "CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1",
    channelSubTypeVersion = "1.0", maxNotifications = 1, largeDataPolling = LARGE },
  channelLifetime = 7200,
}
local NATIVE_RESPONSE = merge(NATIVE_REQUEST, {
  callbackURL = "http://example.com/callBackUrl/cbu899",
  resourceURL = TEL .. "ch309",
})
local INDIVIDUAL = {
  clientCorrelator = "456", applicationTag = "someOtherApp", channelType = "LongPolling",
  channelData = { channelURL = TEL .. "ch456/notifications", maxNotifications = 5 },
  channelLifetime = 7200,
  callbackURL = "http://example.com/callBackUrl/cbu333",
  resourceURL = TEL .. "ch456",
}
local LIST = {
  notificationChannel = {
    LP_RESPONSE,
    merge(PUSH_RESPONSE, { applicationTag = "someOtherApp", channelLifetime = 3600,
      channelData = { appId = "x-wap-application:wml.ua", maxNotifications = 5 } }),
  },
  resourceURL = TEL:sub(1, -2),
}

-- file, root, expected value (notificationList: the roots of its items).
local EXAMPLES = {
  { "6.1.3.1-response.xml", "notificationChannelList", LIST },
  { "6.1.5.1-request.xml", "notificationChannel", LP_REQUEST },
  { "6.1.5.1-response.xml", "notificationChannel", LP_RESPONSE },
  { "6.1.5.2-request.xml", "notificationChannel", PUSH_REQUEST },
  { "6.1.5.2-response.xml", "notificationChannel", PUSH_RESPONSE },
  { "6.1.5.3-request.xml", "notificationChannel", PUSH_LARGE_REQUEST },
  { "6.1.5.3-response.xml", "notificationChannel", PUSH_LARGE_RESPONSE },
  { "6.1.5.4-request.xml", "notificationChannel", PUSH_LARGE_REQUEST },
  { "6.1.5.5-request.xml", "notificationChannel", LP_REQUEST },
  { "6.1.5.5-response.xml", "notificationChannel", ACR_RESPONSE },
  { "6.1.5.6-request.xml", "notificationChannel", WS_REQUEST },
  { "6.1.5.6-response.xml", "notificationChannel", WS_RESPONSE },
  { "6.1.5.7-request.xml", "notificationChannel", LP_REQUEST },
  { "6.1.5.8-request.xml", "notificationChannel", NATIVE_REQUEST },
  { "6.1.5.8-response.xml", "notificationChannel", NATIVE_RESPONSE },
  { "6.2.3.1-response.xml", "notificationChannel", INDIVIDUAL },
  { "6.3.5.1-request.xml", "longPollingRequestParameters", {} },
  { "6.3.5.1-response.xml", "notificationList", { "presenceNotification" } },
  { "6.3.5.2-request.xml", "longPollingRequestParameters", {} },
  { "6.3.5.2-response.xml", "notificationList",
    { "presenceNotification", "inboundMessageNotification", "inboundMessageNotification" } },
  { "6.3.5.3-request.xml", "longPollingRequestParameters", {} },
  { "6.3.5.3-response.xml", "notificationList", {} },
  { "6.3.5.4-request.xml", "longPollingRequestParameters", {} },
  { "6.4.3.1-response.xml", "notificationChannelLifetime", { channelLifetime = 1724 } },
  { "6.4.4.1-request.xml", "notificationChannelLifetime", { channelLifetime = 7200 } },
  { "6.4.4.1-response.xml", "notificationChannelLifetime", { channelLifetime = 3600 } },
  { "C.1.1-request.form", "notificationChannel", LP_REQUEST },
  { "C.1.1-response.xml", "notificationChannel", LP_RESPONSE },
  { "C.1.2-request.form", "notificationChannel", PUSH_REQUEST },
  { "C.1.2-response.xml", "notificationChannel", PUSH_RESPONSE },
  { "C.1.3-request.form", "notificationChannel", LP_REQUEST },
  { "C.1.3-response.xml", "notificationChannel", ACR_RESPONSE },
  { "C.2.1-request.form", "longPollingRequestParameters", {} },
  { "C.2.1-response.xml", "notificationList", { "presenceNotification" } },
  { "C.2.2-request.form", "longPollingRequestParameters", {} },
  { "D.1-response.json", "notificationChannelList", LIST },
  { "D.2-request.json", "notificationChannel", LP_REQUEST },
  { "D.2-response.json", "notificationChannel", LP_RESPONSE },
  { "D.3-request.json", "notificationChannel", PUSH_REQUEST },
  { "D.3-response.json", "notificationChannel", PUSH_RESPONSE },
  { "D.4-request.json", "notificationChannel", PUSH_LARGE_REQUEST },
  { "D.4-response.json", "notificationChannel", PUSH_LARGE_RESPONSE },
  { "D.5-request.json", "notificationChannel", PUSH_LARGE_REQUEST },
  { "D.6-request.json", "notificationChannel", LP_REQUEST },
  -- As printed, the URL has a space in it (after "v1/") and around it.
  { "D.6-response.json", "notificationChannel", merge(ACR_RESPONSE, {
    channelData = { maxNotifications = 1, channelURL = BASE .. " acr%3Apseudonym123/channels/ch123/notifications" } }) },
  { "D.7-request.json", "notificationChannel", WS_REQUEST },
  { "D.7-response.json", "notificationChannel", WS_RESPONSE },
  { "D.8-request.json", "notificationChannel", LP_REQUEST },
  { "D.9-request.json", "notificationChannel", NATIVE_REQUEST },
  { "D.9-response.json", "notificationChannel", NATIVE_RESPONSE },
  { "D.10-response.json", "notificationChannel", INDIVIDUAL },
  { "D.12-request.json", "longPollingRequestParameters", {} },
  { "D.12-response.json", "notificationList", { "presenceNotification" } },
  { "D.13-request.json", "longPollingRequestParameters", {} },
  { "D.13-response.json", "notificationList",
    { "inboundMessageNotification", "inboundMessageNotification", "presenceNotification" } },
  { "D.14-request.json", "longPollingRequestParameters", {} },
  { "D.14-response.json", "notificationList", {} },
  { "D.15-request.json", "longPollingRequestParameters", {} },
  { "D.16-response.json", "notificationChannelLifetime", { channelLifetime = 1724 } },
  { "D.17-request.json", "notificationChannelLifetime", { channelLifetime = 7200 } },
  { "D.17-response.json", "notificationChannelLifetime", { channelLifetime = 3600 } },
  { "I.4.1.xml", "notificationList", { "presenceNotification" } },
  { "I.4.2.xml", "notificationList",
    { "presenceNotification", "inboundMessageNotification", "inboundMessageNotification" } },
  { "I.5.1.json", "notificationList", { "presenceNotification" } },
  { "I.5.2.json", "notificationList",
    { "inboundMessageNotification", "inboundMessageNotification", "presenceNotification" } },
}

local MEDIA = { json = JSON, xml = XML, form = FORM }

local function roots_of(list_value)
  local roots = {}
  for i, item in ipairs(list_value.notifications) do
    roots[i] = item.root
  end
  return roots
end

-- Compares a decoded value with the expectation of EXAMPLES.
local function assert_example(root, expected, value)
  if root == "notificationList" then
    assert.same(expected, roots_of(value))
  else
    assert.same(expected, value)
  end
end

describe("codec.representation", function()
  describe("the spec's examples", function()
    for _, ex in ipairs(EXAMPLES) do
      local file, root, expected = ex[1], ex[2], ex[3]
      local ext = file:match("%.(%w+)$")

      it("decodes " .. file, function()
        local v = decode_ok(MEDIA[ext], fx.load(file), root, { form = true })
        assert_example(root, expected, v)
      end)

      if ext ~= "form" then
        for _, format in ipairs({ "json", "xml" }) do
          it("encodes " .. file .. " back as " .. format .. " with the same elements", function()
            local v = decode_ok(MEDIA[ext], fx.load(file), root)
            local body, content_type = rep.encode(format, root, v)
            assert.equal(MEDIA[format], content_type)
            local again = decode_ok(content_type, body, root)
            assert.same(v.notifications and #v.notifications or v,
              again.notifications and #again.notifications or again)
            assert_example(root, expected, again)
          end)
        end
      end
    end

    it("refuses D.1 and D.3 as printed (typographic quotes) as malformed, without raising", function()
      for _, file in ipairs({ "D.1-response.json", "D.3-request.json", "D.3-response.json" }) do
        local err = decode_err(JSON, fx.raw(file),
          file:match("^D%.1") and "notificationChannelList" or "notificationChannel")
        assert.equal("SVC0001", err.id)
        assert.equal(400, err.status)
      end
    end)

    it("encodes the JSON rules of API.md: numbers, booleans, arrays", function()
      local body = rep.encode("json", "notificationChannel", PUSH_LARGE_REQUEST)
      assert.matches('"maxNotifications":1[,}]', body)
      assert.matches('"pollingEnabled":true', body)
      assert.matches('"channelLifetime":7200', body)
      assert.not_matches("xsi", body)
      body = rep.encode("json", "notificationChannelList", { notificationChannel = {},
        resourceURL = "http://x/channels" })
      assert.equal('{"notificationChannelList":{"notificationChannel":[],"resourceURL":"http://x/channels"}}', body)
      body = rep.encode("json", "notificationChannelList", LIST)
      assert.matches('^{"notificationChannelList":{"notificationChannel":%[{', body)
      assert.equal('{"notificationList":[]}', rep.encode("json", "notificationList", { notifications = {} }))
      assert.equal('{"notificationChannelLifetime":{"channelLifetime":1724}}',
        rep.encode("json", "notificationChannelLifetime", { channelLifetime = 1724 }))
      assert.equal('{"connAck":{"channelLifetime":60}}', rep.encode("json", "connAck", { channelLifetime = 60 }))
    end)

    it("encodes XML as in the spec: declaration, prefixed root, unqualified children, xsi:type", function()
      local body = rep.encode("xml", "notificationChannel", LP_RESPONSE)
      assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"'
        .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. "<clientCorrelator>123</clientCorrelator><applicationTag>myApp</applicationTag>"
        .. "<channelType>LongPolling</channelType>"
        .. '<channelData xsi:type="nc:LongPollingData"><channelURL>' .. TEL
        .. "ch123/notifications</channelURL><maxNotifications>1</maxNotifications></channelData>"
        .. "<channelLifetime>7200</channelLifetime>"
        .. "<callbackURL>http://example.com/callBackUrl/cbu111</callbackURL>"
        .. "<resourceURL>" .. TEL .. "ch123</resourceURL></nc:notificationChannel>", body)
      body = rep.encode("xml", "notificationChannel", WS_RESPONSE)
      assert.matches('<channelData xsi:type="nc:WebSocketsData"><channelURL>ws://', body, 1, true)
    end)

    it("keeps elements in schema order whatever order the input had", function()
      local v = decode_ok(JSON, '{"notificationChannel":{"resourceURL":"r","channelType":"WebSockets",'
        .. '"channelData":{"maxNotifications":2,"channelURL":"ws://x"},"clientCorrelator":"c"}}',
        "notificationChannel")
      local body = rep.encode("xml", "notificationChannel", v)
      assert.matches("<clientCorrelator>c</clientCorrelator><channelType>WebSockets</channelType>"
        .. '<channelData xsi:type="nc:WebSocketsData"><channelURL>ws://x</channelURL>'
        .. "<maxNotifications>2</maxNotifications></channelData><resourceURL>r</resourceURL>", body, 1, true)
    end)
  end)

  describe("negotiate", function()
    local cases = {
      { nil, "json" }, { "", "json" }, { "  ", "json" }, { "*/*", "json" },
      { "application/*", "json" }, { "application/json", "json" },
      { "application/xml", "xml" }, { "text/xml", "xml" }, { "text/*", "xml" },
      { "Application/XML; charset=utf-8", "xml" },
      { "application/json, application/xml", "json" },
      { "application/xml, application/json", "json" },
      { "application/xml;q=0.9, application/json;q=0.8", "xml" },
      { "application/json;q=0.5, application/xml", "xml" },
      { "application/json;q=0, */*", "xml" },
      { "application/xml;q=0, */*;q=0.1", "json" },
      { "text/html, application/xml;q=0.9, */*;q=0.8", "xml" },
      { "text/html, */*;q=0.1", "json" },
      { "application/json; q=0.1, text/xml; q=0.2", "xml" },
      { "nonsense", "json" },
    }
    for _, c in ipairs(cases) do
      it(string.format("%q -> %s", tostring(c[1]), c[2]), function()
        local format, err = rep.negotiate(c[1])
        assert.is_nil(err)
        assert.equal(c[2], format)
      end)
    end

    for _, accept in ipairs({ "text/html", "image/png, text/plain", "application/json;q=0, application/xml;q=0",
        "*/*;q=0", "application/*;q=0, text/html" }) do
      it("answers 406 for " .. accept, function()
        local format, err = rep.negotiate(accept)
        assert.is_nil(format)
        assert.equal("SVC3003", err.id)
        assert.equal(406, err.status)
        assert.same({ accept, "application/json, application/xml" }, err.variables)
      end)
    end
  end)

  describe("decode", function()
    local CH = "notificationChannel"

    it("accepts media type parameters", function()
      assert.same({ channelType = "LongPolling" },
        decode_ok("application/json; charset=UTF-8", '{"notificationChannel":{"channelType":"LongPolling"}}', CH))
      assert.same({ channelType = "LongPolling" },
        decode_ok("text/xml; charset=utf-8", '<nc:notificationChannel xmlns:nc="'
          .. "urn:oma:xml:rest:netapi:notificationchannel:1" .. '"><channelType>LongPolling</channelType>'
          .. "</nc:notificationChannel>", CH))
    end)

    it("answers 415 for a body of another or no Content-Type", function()
      for _, ct in ipairs({ "text/plain", "application/json-patch+json", FORM }) do
        local err = decode_err(ct, "{}", CH)
        assert.equal("SVC3002", err.id)
        assert.equal(415, err.status)
        assert.equal(ct, err.variables[1])
      end
      local _, err = rep.decode({ headers = {}, body = "{}" }, CH)
      assert.equal("SVC3002", err.id)
      assert.same({ "(none)", "application/json, application/xml" }, err.variables)
    end)

    it("takes form bodies only when asked to", function()
      local err = decode_err(FORM, "channelType=LongPolling", CH)
      assert.equal(415, err.status)
      assert.same({ channelType = "LongPolling" }, decode_ok(FORM, "channelType=LongPolling", CH, { form = true }))
      _, err = rep.decode(req("text/plain", "x"), CH, { form = true })
      assert.equal("application/json, application/xml, application/x-www-form-urlencoded", err.variables[2])
    end)

    it("refuses an empty body as the missing root, unless allowed", function()
      assert_svc0002(CH, decode_err(JSON, "", CH))
      assert_svc0002(CH, decode_err(nil, " \r\n", CH))
      assert.same({}, decode_ok(nil, "", "notificationChannelLifetime", { allow_empty = true }))
      -- OMA NC C.2: the long poll body is "an empty string in this version".
      assert.same({}, decode_ok(nil, "", "longPollingRequestParameters"))
      assert.same({}, decode_ok(FORM, "", "longPollingRequestParameters", { form = true }))
    end)

    it("refuses a JSON key given twice in one object, naming it", function()
      local err = decode_err(JSON,
        '{"notificationChannel":{"channelType":"OMAPush","channelType":"LongPolling"}}', CH)
      assert_svc0002("channelType", err)
      -- Equal after unescaping is equal.
      err = decode_err(JSON, '{"notificationChannel":{"channelType":"LongPolling",'
        .. '"clientCorrelator":"a","client\\u0043orrelator":"b"}}', CH)
      assert_svc0002("clientCorrelator", err)
      -- The same key in two objects, or inside a string, is no repeat.
      assert.same({ channelType = "LongPolling", clientCorrelator = '"channelType":1' },
        decode_ok(JSON, '{"notificationChannel":{"channelType":"LongPolling",'
          .. '"clientCorrelator":"\\"channelType\\":1"}}', CH))
    end)

    it("ignores a byte order mark before JSON (RFC 8259 8.1), also for opaque roots", function()
      local BOM = "\239\187\191"
      assert.same({ channelType = "LongPolling" },
        decode_ok(JSON, BOM .. '{"notificationChannel":{"channelType":"LongPolling"}}', CH))
      local list = decode_ok(JSON, BOM .. '{"notificationList":[{"x":{"a":1}}]}', "notificationList")
      assert.equal(1, #list.notifications)
      assert.same({ x = { a = 1 } }, json.decode(list.notifications[1].body))
    end)

    it("reads an opaque root written with trailing commas", function()
      local list = decode_ok(JSON, '{"notificationList":[{"x":{"a":1}},],}', "notificationList")
      assert.equal(1, #list.notifications)
      assert.same({ x = { a = 1 } }, json.decode(list.notifications[1].body))
    end)

    describe("malformed input is SVC0001, never a raise", function()
      local bad_json = { "{", '{"notificationChannel":}', "[1,", "{'a':1}", "nul",
        '{"notificationChannel":{"channelType":"LongPolling"}} x', string.rep("[", 100000),
        '{"a":NaN}', "\255\254" }
      for _, body in ipairs(bad_json) do
        it("JSON " .. body:sub(1, 24), function()
          local err = decode_err(JSON, body, CH)
          assert.equal("SVC0001", err.id)
          assert.equal(400, err.status)
        end)
      end
      local bad_xml = { "<", "<a>", "<a></b>", "<a><b></a>", "text", "<a/><b/>", "<a x='1' x='2'/>",
        "<p:a/>", "<a>&undefined;</a>", "<a>\0</a>", string.rep("<a>", 100000),
        '<?xml version="1.0" encoding="bogus"?><a/>', "<a xmlns:p=''/>" }
      for _, body in ipairs(bad_xml) do
        it("XML " .. body:sub(1, 24):gsub("%z", "\\0"), function()
          local err = decode_err(XML, body, CH)
          assert.equal("SVC0001", err.id)
          assert.equal(400, err.status)
        end)
      end
    end)

    describe("roots", function()
      it("names the expected root when another is sent", function()
        assert_svc0002(CH, decode_err(JSON, '{"notificationChannelLifetime":{}}', CH))
        assert_svc0002(CH, decode_err(JSON, "[]", CH))
        assert_svc0002(CH, decode_err(JSON, '"x"', CH))
        assert_svc0002(CH, decode_err(JSON, '{"notificationChannel":"x"}', CH))
        assert_svc0002(CH, decode_err(JSON, '{"notificationChannel":[{}]}', CH))
        assert_svc0002(CH, decode_err(XML, '<nc:notificationChannelLifetime xmlns:nc="'
          .. "urn:oma:xml:rest:netapi:notificationchannel:1" .. '"/>', CH))
        -- Right name, no namespace or another one: not the NC root.
        assert_svc0002(CH, decode_err(XML, "<notificationChannel><channelType>x</channelType></notificationChannel>", CH))
        assert_svc0002(CH, decode_err(XML, '<notificationChannel xmlns="urn:x"/>', CH))
      end)

      it("names an extra top-level member", function()
        assert_svc0002("extra", decode_err(JSON, '{"notificationChannel":{"channelType":"x"},"extra":1}', CH))
      end)

      it("takes a default namespace on the root as well as a prefix", function()
        local v = decode_ok(XML, '<notificationChannel xmlns="urn:oma:xml:rest:netapi:notificationchannel:1"'
          .. ' xmlns:x="urn:oma:xml:rest:netapi:notificationchannel:1">'
          .. '<channelType xmlns="">WebSockets</channelType>'
          .. '<channelData xmlns="" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="x:WebSocketsData"/>'
          .. "</notificationChannel>", CH)
        assert.same({ channelType = "WebSockets", channelData = {} }, v)
      end)

      it("refuses qualified children (they are unqualified in the schema)", function()
        assert_svc0002("channelType", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><nc:channelType>x</nc:channelType>'
          .. "</nc:notificationChannel>", CH))
      end)

      it("reads connCheck and connAck (Appendix I.3)", function()
        assert.same({ checkInterval = 30, newChannelLifetime = 600 },
          decode_ok(JSON, '{"connCheck":{"checkInterval":"30","newChannelLifetime":600}}', "connCheck"))
        assert.same({}, decode_ok(JSON, '{"connAck":{}}', "connAck"))
        assert.same({ channelLifetime = 5 }, decode_ok(XML, '<nc:connAck xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><channelLifetime>5</channelLifetime></nc:connAck>', "connAck"))
      end)
    end)

    describe("loose JSON input (API.md 2, Appendix D)", function()
      local function lifetime(v)
        return rep.decode(req(JSON, '{"notificationChannelLifetime":{"channelLifetime":' .. v .. "}}"),
          "notificationChannelLifetime")
      end

      it("reads ints from numbers and numeric strings", function()
        for text, want in pairs({ ["30"] = 30, ['"30"'] = 30, ['" 30 "'] = 30, ['"+7"'] = 7,
            ["-1"] = -1, ["0"] = 0, ["3.0"] = 3, ["2147483647"] = 2147483647,
            ['"-2147483648"'] = -2147483648 }) do
          local v, err = lifetime(text)
          assert.is_nil(err, text)
          assert.equal(want, v.channelLifetime, text)
          assert.equal("integer", math.type(v.channelLifetime), text)
        end
      end)

      it("refuses what is no xsd:int, naming the element", function()
        for _, text in ipairs({ '"3.5"', "3.5", '"x"', '""', "true", "{}", "[1]", '"1e3"', "1e300",
            "2147483648", '"99999999999999999999"', '"0x10"', '"3 4"' }) do
          local v, err = lifetime(text)
          assert.is_nil(v, text)
          assert_svc0002("channelLifetime", err)
        end
      end)

      it("reads booleans from true/false and their strings", function()
        local function polling(v)
          local value, err = rep.decode(req(JSON, '{"notificationChannel":{"channelType":"OMAPush",'
            .. '"channelData":{"largeDataPolling":{"pollingEnabled":' .. v .. "}}}}"), CH)
          return value and value.channelData.largeDataPolling.pollingEnabled, err
        end
        assert.is_true(polling("true"))
        assert.is_true(polling('"true"'))
        assert.is_false(polling("false"))
        assert.is_false(polling('"false"'))
        for _, text in ipairs({ '"yes"', "1.5", "{}", '"TRUE"' }) do
          local v, err = polling(text)
          assert.is_nil(v)
          assert_svc0002("channelData.largeDataPolling.pollingEnabled", err)
        end
      end)

      it("takes a single object where an array may stand, and null for none", function()
        local v = decode_ok(JSON, '{"notificationChannelList":{"notificationChannel":'
          .. '{"channelType":"LongPolling"},"resourceURL":"r"}}', "notificationChannelList")
        assert.same({ notificationChannel = { { channelType = "LongPolling" } }, resourceURL = "r" }, v)
        v = decode_ok(JSON, '{"notificationChannelList":{"resourceURL":"r"}}', "notificationChannelList")
        assert.same({ notificationChannel = {}, resourceURL = "r" }, v)
        v = decode_ok(JSON, '{"notificationChannelList":{"notificationChannel":null,"resourceURL":"r"}}',
          "notificationChannelList")
        assert.same({}, v.notificationChannel)
        v = decode_ok(JSON, '{"notificationChannelList":{"notificationChannel":[],"resourceURL":"r"}}',
          "notificationChannelList")
        assert.same({}, v.notificationChannel)
      end)

      it("reads a number where a string stands as its text", function()
        assert.same({ channelType = "LongPolling", clientCorrelator = "123" },
          decode_ok(JSON, '{"notificationChannel":{"channelType":"LongPolling","clientCorrelator":123}}', CH))
      end)

      it("treats null as absent", function()
        assert.same({ channelType = "LongPolling" },
          decode_ok(JSON, '{"notificationChannel":{"channelType":"LongPolling","clientCorrelator":null}}', CH))
      end)

      it("refuses text that is not UTF-8 or holds control characters XML cannot carry", function()
        for _, text in ipairs({ '"a\\u0001b"', '"\255"', '"a\\u0000"', '"\237\160\128"' }) do
          assert_svc0002("clientCorrelator", decode_err(JSON,
            '{"notificationChannel":{"channelType":"LongPolling","clientCorrelator":' .. text .. "}}", CH))
        end
        assert_svc0002("clientCorrelator", decode_err(FORM, "channelType=LongPolling&clientCorrelator=%FF",
          CH, { form = true }))
        assert.same({ channelType = "LongPolling", clientCorrelator = "\t\r\n\u{e9}\u{1F600}" },
          decode_ok(JSON, '{"notificationChannel":{"channelType":"LongPolling",'
            .. '"clientCorrelator":"\\t\\r\\n\\u00e9\\ud83d\\ude00"}}', CH))
      end)

      it("keeps xsd:string whitespace, collapses anyURI", function()
        assert.same({ channelType = "LongPolling", applicationTag = " a  b ", resourceURL = "http://x y" },
          decode_ok(JSON, '{"notificationChannel":{"channelType":"LongPolling","applicationTag":" a  b ",'
            .. '"resourceURL":" http://x \\n y "}}', CH))
      end)
    end)

    describe("elements", function()
      it("names unknown elements", function()
        assert_svc0002("colour", decode_err(JSON, '{"notificationChannel":{"channelType":"x","colour":1}}', CH))
        assert_svc0002("channelData.appId", decode_err(JSON,
          '{"notificationChannel":{"channelType":"LongPolling","channelData":{"appId":"a"}}}', CH))
        assert_svc0002("channelData.colour", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><channelType>LongPolling</channelType>'
          .. "<channelData><colour/></channelData></nc:notificationChannel>", CH))
        assert_svc0002("notificationChannel.colour", decode_err(JSON,
          '{"notificationChannelList":{"resourceURL":"r","notificationChannel":[{"channelType":"x"},{"colour":1}]}}',
          "notificationChannelList"))
        assert_svc0002("colour", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1" colour="red"><channelType>x</channelType>'
          .. "</nc:notificationChannel>", CH))
      end)

      it("names missing required elements", function()
        assert_svc0002("channelType", decode_err(JSON, '{"notificationChannel":{"clientCorrelator":"1"}}', CH))
        assert_svc0002("channelType", decode_err(JSON, '{"notificationChannel":null}', CH))
        assert_svc0002("channelType", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"/>', CH))
        assert_svc0002("channelData.registrationToken", decode_err(JSON,
          '{"notificationChannel":{"channelType":"NativeChannel","channelData":{"channelSubType":"GCM"}}}', CH))
        assert_svc0002("resourceURL", decode_err(JSON, '{"notificationChannelList":{}}', "notificationChannelList"))
      end)

      it("names elements of the wrong kind", function()
        assert_svc0002("channelType", decode_err(JSON, '{"notificationChannel":{"channelType":{}}}', CH))
        assert_svc0002("channelType", decode_err(JSON, '{"notificationChannel":{"channelType":["a"]}}', CH))
        assert_svc0002("channelType", decode_err(JSON, '{"notificationChannel":{"channelType":true}}', CH))
        assert_svc0002("channelData", decode_err(JSON, '{"notificationChannel":{"channelType":"x","channelData":"s"}}', CH))
        assert_svc0002("channelData.maxNotifications", decode_err(JSON,
          '{"notificationChannel":{"channelType":"WebSockets","channelData":{"maxNotifications":"x"}}}', CH))
        assert_svc0002("channelType", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><channelType><b/></channelType></nc:notificationChannel>', CH))
        assert_svc0002("channelData.maxNotifications", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><channelType>WebSockets</channelType>'
          .. "<channelData><maxNotifications>3.5</maxNotifications></channelData></nc:notificationChannel>", CH))
        -- Text where only elements may stand.
        assert_svc0002("channelData", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><channelType>WebSockets</channelType>'
          .. "<channelData>text</channelData></nc:notificationChannel>", CH))
      end)

      it("refuses a repeated XML element that may not repeat", function()
        assert_svc0002("channelType", decode_err(XML, '<nc:notificationChannel xmlns:nc="'
          .. 'urn:oma:xml:rest:netapi:notificationchannel:1"><channelType>a</channelType>'
          .. "<channelType>b</channelType></nc:notificationChannel>", CH))
      end)

      it("keeps an unknown channelType as given, for the caller to judge", function()
        assert.same({ channelType = "Pigeon", channelData = { maxNotifications = 3 } },
          decode_ok(JSON, '{"notificationChannel":{"channelType":"Pigeon","channelData":{"maxNotifications":"3"}}}', CH))
        assert.same({ channelType = "Pigeon", channelData = { maxNotifications = 3 } },
          decode_ok(XML, '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"'
            .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><channelType>Pigeon</channelType>'
            .. '<channelData xsi:type="nc:PigeonData"><maxNotifications>3</maxNotifications></channelData>'
            .. "</nc:notificationChannel>", CH))
        -- OMAPush and NativeChannel are read fully, to be refused later with POL1023.
        assert.same(NATIVE_REQUEST, decode_ok(JSON, fx.load("D.9-request.json"), CH))
      end)
    end)

    describe("xsi:type", function()
      local function channel(xsi_type, channel_type, decls)
        return '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"'
          .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' .. (decls or "") .. ">"
          .. "<channelType>" .. channel_type .. "</channelType>"
          .. "<channelData" .. (xsi_type and (' xsi:type="' .. xsi_type .. '"') or "") .. ">"
          .. "<maxNotifications>2</maxNotifications></channelData></nc:notificationChannel>"
      end

      it("must agree with channelType", function()
        assert_svc0002("channelData", decode_err(XML, channel("nc:WebSocketsData", "LongPolling"), CH))
        assert_svc0002("channelData", decode_err(XML, channel("nc:LongPollingData", "WebSockets"), CH))
        assert_svc0002("channelData", decode_err(XML, channel("LongPollingData", "LongPolling"), CH))
        assert_svc0002("channelData", decode_err(XML, channel("o:LongPollingData", "LongPolling",
          ' xmlns:o="urn:other"'), CH))
        assert_svc0002("channelData", decode_err(XML, channel("zz:LongPollingData", "LongPolling"), CH))
      end)

      it("may use any prefix bound to the NC namespace, or be absent", function()
        local want = { channelType = "LongPolling", channelData = { maxNotifications = 2 } }
        assert.same(want, decode_ok(XML, channel("nc:LongPollingData", "LongPolling"), CH))
        assert.same(want, decode_ok(XML, channel("n2:LongPollingData", "LongPolling",
          ' xmlns:n2="urn:oma:xml:rest:netapi:notificationchannel:1"'), CH))
        assert.same(want, decode_ok(XML, channel(nil, "LongPolling"), CH))
      end)
    end)

    describe("entities", function()
      it("refuses a DOCTYPE: no billion laughs", function()
        local lol = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        local prev = "lol"
        for i = 1, 9 do
          lol = lol .. "<!ENTITY lol" .. i .. ' "' .. string.rep("&" .. prev .. ";", 10) .. '">'
          prev = "lol" .. i
        end
        lol = lol .. ']><nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">'
          .. "<channelType>&lol9;</channelType></nc:notificationChannel>"
        local err = decode_err(XML, lol, CH)
        assert.equal("SVC0001", err.id)
        assert.matches("DOCTYPE", err.variables[1])
      end)

      it("refuses a DOCTYPE: no external entities", function()
        local err = decode_err(XML, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
          .. '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">'
          .. "<channelType>&xxe;</channelType></nc:notificationChannel>", CH)
        assert.equal("SVC0001", err.id)
        err = decode_err(XML, '<!DOCTYPE x SYSTEM "http://example.com/x.dtd"><x/>', CH)
        assert.equal("SVC0001", err.id)
      end)

      it("still reads the predefined entities and character references", function()
        assert.same({ channelType = "a<b>&\"'\u{e9}" }, decode_ok(XML,
          '<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">'
          .. "<channelType>a&lt;b&gt;&amp;&quot;&apos;&#233;</channelType></nc:notificationChannel>", CH))
      end)
    end)

    it("reads ISO-8859-1 documents as UTF-8 values", function()
      assert.same({ channelType = "caf\u{e9}" }, decode_ok(XML,
        '<?xml version="1.0" encoding="ISO-8859-1"?><nc:notificationChannel'
        .. ' xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"><channelType>caf\233</channelType>'
        .. "</nc:notificationChannel>", CH))
    end)
  end)

  describe("form (Appendix C)", function()
    local CH = "notificationChannel"

    it("maps channel data parameters into channelData", function()
      assert.same({ channelType = "LongPolling", channelData = { maxNotifications = 3, maxWaitTime = 0 } },
        decode_ok(FORM, "channelType=LongPolling&maxNotifications=3&maxWaitTime=0", CH, { form = true }))
      assert.same({ channelType = "LongPolling", clientCorrelator = "a b+c" },
        decode_ok(FORM, "channelType=LongPolling&clientCorrelator=a+b%2Bc", CH, { form = true }))
    end)

    it("names the parameter that is wrong, unknown, repeated or missing", function()
      assert_svc0002("maxNotifications", decode_err(FORM, "channelType=LongPolling&maxNotifications=x", CH, { form = true }))
      assert_svc0002("colour", decode_err(FORM, "channelType=LongPolling&colour=red", CH, { form = true }))
      assert_svc0002("channelType", decode_err(FORM, "channelType=a&channelType=b", CH, { form = true }))
      assert_svc0002("channelType", decode_err(FORM, "clientCorrelator=1", CH, { form = true }))
      assert_svc0002("appId", decode_err(FORM, "channelType=LongPolling&appId=x", CH, { form = true }))
      assert_svc0002("x", decode_err(FORM, "x=1", "longPollingRequestParameters", { form = true }))
    end)

    it("takes both spellings of the long poll parameter", function()
      for _, body in ipairs({ "longPollingRequestParameters=", "longPollingRequestParmeters=", "" }) do
        assert.same({}, decode_ok(FORM, body, "longPollingRequestParameters", { form = true }))
      end
    end)

    it("has no form for other roots", function()
      local err = decode_err(FORM, "channelLifetime=1", "notificationChannelLifetime", { form = true })
      assert.equal("SVC3002", err.id)
    end)
  end)

  describe("encode", function()
    it("escapes XML text", function()
      local body = rep.encode("xml", "notificationChannel", { channelType = "LongPolling",
        clientCorrelator = "<a & 'b' \"c\">]]>\r\n", applicationTag = "x\1y" })
      assert.matches("<clientCorrelator>&lt;a &amp; 'b' \"c\"&gt;]]&gt;&#13;\n</clientCorrelator>", body, 1, true)
      assert.matches("<applicationTag>x\u{FFFD}y</applicationTag>", body, 1, true)
      local v = decode_ok(XML, body, "notificationChannel")
      assert.equal("<a & 'b' \"c\">]]>\r\n", v.clientCorrelator)
    end)

    it("escapes JSON text", function()
      local body = rep.encode("json", "notificationChannel", { channelType = "a\"\\\n/" })
      assert.equal('{"notificationChannel":{"channelType":"a\\"\\\\\\n/"}}', body)
    end)

    it("raises on a value that does not fit the schema (a bug in the caller)", function()
      assert.has_error(function() rep.encode("json", "notificationChannel", { colour = "red" }) end)
      assert.has_error(function() rep.encode("json", "notificationChannel", { channelLifetime = "7" }) end)
      assert.has_error(function() rep.encode("xml", "notificationChannel", { channelLifetime = 1.5 }) end)
      assert.has_error(function() rep.encode("json", "nope", {}) end)
      assert.has_error(function() rep.encode("yaml", "notificationChannel", {}) end)
    end)

    it("writes no xsi:type for a channel type the spec does not define", function()
      local body = rep.encode("xml", "notificationChannel", { channelType = "Pigeon", channelData = {} })
      assert.matches("<channelData></channelData>", body, 1, true)
    end)

    it("writes connCheck and connAck in both formats", function()
      assert.equal('{"connCheck":{"checkInterval":30,"newChannelLifetime":600}}',
        rep.encode("json", "connCheck", { checkInterval = 30, newChannelLifetime = 600 }))
      assert.matches("<nc:connAck [^>]*><channelLifetime>60</channelLifetime></nc:connAck>$",
        rep.encode("xml", "connAck", { channelLifetime = 60 }))
    end)
  end)

  describe("response", function()
    it("sets Content-Type and Vary, keeping extra headers", function()
      local res = rep.response(201, "xml", "notificationChannelLifetime", { channelLifetime = 1 },
        { Location = "http://x" })
      assert.equal(201, res.status)
      assert.equal(XML, res.headers["Content-Type"])
      assert.equal("Accept", res.headers["Vary"])
      assert.equal("http://x", res.headers.Location)
      res = rep.response(200, "json", "notificationChannelLifetime", { channelLifetime = 1 },
        { Vary = "Origin" })
      assert.equal("Origin, Accept", res.headers["Vary"])
      assert.equal('{"notificationChannelLifetime":{"channelLifetime":1}}', res.body)
    end)
  end)

  describe("error_response", function()
    local pol = errors.new("POL1023", "OMAPush", "LongPolling, WebSockets")

    it("gives the JSON requestError of D.8", function()
      local res = rep.error_response(pol, "json", { Allow = "GET" })
      assert.equal(403, res.status)
      assert.equal(JSON, res.headers["Content-Type"])
      assert.equal("Accept", res.headers["Vary"])
      assert.equal("GET", res.headers.Allow)
      assert.same({ requestError = { policyException = { messageId = "POL1023",
        text = "Notification channel type %1 not supported. Supported types: %2.",
        variables = { "OMAPush", "LongPolling, WebSockets" } } } }, json.decode(res.body))
      assert.equal(res.body, rep.error_response(pol).body)
    end)

    it("gives the XML requestError of 6.1.5.7 in the common namespace", function()
      local res = rep.error_response(pol, "xml")
      assert.equal(403, res.status)
      assert.equal(XML, res.headers["Content-Type"])
      assert.equal("Accept", res.headers["Vary"])
      local root = assert(xml.parse(res.body))
      assert.equal("requestError", root.localname)
      assert.equal("urn:oma:xml:rest:netapi:common:1", root.ns)
      local ex = xml.elements(root)
      assert.equal(1, #ex)
      assert.equal("policyException", ex[1].localname)
      assert.is_nil(ex[1].ns)
      local parts = {}
      for _, e in ipairs(xml.elements(ex[1])) do
        parts[#parts + 1] = { e.localname, xml.text(e) }
      end
      assert.same({ { "messageId", "POL1023" },
        { "text", "Notification channel type %1 not supported. Supported types: %2." },
        { "variables", "OMAPush" }, { "variables", "LongPolling, WebSockets" } }, parts)
    end)

    it("matches the spec's XML examples element for element", function()
      for _, ex in ipairs({ { "6.1.5.4-response.xml", errors.new("POL2006", "LargeDataPolling") },
          { "6.1.5.7-response.xml", errors.new("POL1023", "LongPolling", "OMAPush, WebSockets") } }) do
        local function shape(text)
          local root = assert(xml.parse(text))
          local out = { root.ns, root.localname }
          for _, e in ipairs(xml.elements(root)) do
            out[#out + 1] = e.localname
            for _, c in ipairs(xml.elements(e)) do
              out[#out + 1] = c.localname .. "=" .. xml.text(c)
            end
          end
          return out
        end
        assert.same(shape(fx.load(ex[1])), shape(rep.error_response(ex[2], "xml").body))
      end
    end)

    it("matches the spec's JSON example D.8", function()
      local err = errors.new("POL1023", "LongPolling", "OMAPush, WebSockets")
      assert.same(json.decode(fx.load("D.8-response.json")), json.decode(rep.error_response(err, "json").body))
    end)

    it("escapes variables in XML", function()
      local res = rep.error_response(errors.new("SVC0002", "a<&>b"), "xml")
      assert.matches("<variables>a&lt;&amp;&gt;b</variables>", res.body, 1, true)
      local empty = rep.error_response(errors.new("SVC1012"), "xml")
      assert.not_matches("<variables>", empty.body, 1, true)
      assert.equal(409, empty.status)
    end)
  end)

  -- codec/representation walks whatever schema it is given (M.new): the
  -- NC one, which this module's own functions use, the movies one, and
  -- any other types module with the same shape.
  describe("new(types)", function()
    local nc_types = require("nc.types")
    local movie_types = require("movies.subscriptions.types")
    local XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'

    it("with nc/types.lua is what the module's own functions are", function()
      local nc = rep.new(nc_types)
      for _, ex in ipairs(EXAMPLES) do
        local r = req(MEDIA[ex[1]:match("%.(%a+)$")], fx.load(ex[1]))
        local a = assert(nc.decode(r, ex[2], { form = true }))
        local b = rep.decode(r, ex[2], { form = true })
        assert.same(b, a)
        for _, format in ipairs({ "json", "xml" }) do
          assert.equal(rep.encode(format, ex[2], b), nc.encode(format, ex[2], a))
        end
      end
      assert.same(rep.response(201, "xml", "connAck", { channelLifetime = 1 }, { Location = "x" }),
        nc.response(201, "xml", "connAck", { channelLifetime = 1 }, { Location = "x" }))
      assert.equal(rep.negotiate, nc.negotiate)
      assert.equal(rep.error_response, nc.error_response)
      assert.equal(nc_types, nc.types)
    end)

    it("with movies/subscriptions/types.lua reads and writes the movies documents", function()
      local mv = rep.new(movie_types)
      local value = { callbackReference = { notifyURL = "http://u", callbackData = "a&b" },
        filter = { movieId = { 3 } }, duration = 60 }
      local body, ct = mv.encode("xml", "movieSubscription", value)
      assert.equal(XML, ct)
      -- Its own namespace and prefix; no xsi declaration, as nothing uses it.
      assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<mv:movieSubscription xmlns:mv="urn:ncserver:xml:movies:1">'
        .. "<callbackReference><notifyURL>http://u</notifyURL><callbackData>a&amp;b</callbackData>"
        .. "</callbackReference><filter><movieId>3</movieId></filter><duration>60</duration>"
        .. "</mv:movieSubscription>", body)
      assert.same(value, mv.decode(req(XML, body), "movieSubscription"))
      assert.equal('{"movieSubscription":{"callbackReference":{"callbackData":"a&b",'
        .. '"notifyURL":"http://u"},"duration":60,"filter":{"movieId":[3]}}}',
        (mv.encode("json", "movieSubscription", value)))
      assert.same(value, mv.decode(req(JSON, '{"movieSubscription":{"callbackReference":'
        .. '{"notifyURL":"http://u","callbackData":"a&b"},"filter":{"movieId":"3"},"duration":"60"}}'),
        "movieSubscription"))
      -- The NC root is not one of its roots, nor its namespace the NC one.
      assert.has_error(function() mv.decode(req(JSON, "{}"), "notificationChannel") end)
      assert_svc0002("movieSubscription", select(2, mv.decode(req(XML,
        '<nc:movieSubscription xmlns:nc="' .. nc_types.NAMESPACE .. '"/>'), "movieSubscription")))
      -- No form bodies: that is the NC schema's hook.
      local _, err = mv.decode(req(FORM, "a=1"), "movieSubscription", { form = true })
      assert.equal("SVC3002", err.id)
      assert.same({ FORM, "application/json, application/xml" }, err.variables)
    end)

    it("reads and writes nillable elements, declaring xsi only where one is nil", function()
      local mv = rep.new(movie_types)
      local value = { eventType = "MovieUpdated", changedFields = { "genre" },
        movie = { movieId = 1, title = "T", premiereDate = "2020-01-01",
          lastModified = "2020-01-01T00:00:00.000Z", resourceURL = "http://m/1" },
        previous = { genre = json.null }, link = { rel = "r", href = "http://h" } }
      local j = mv.encode("json", "movieNotification", value)
      assert.matches('"previous":{"genre":null}', j, 1, true)
      assert.same(value, mv.read("json", "movieNotification", j))
      local x = mv.element("movieNotification", value)
      assert.equal('<mv:movieNotification xmlns:mv="urn:ncserver:xml:movies:1" ' .. XSI .. ">"
        .. "<eventType>MovieUpdated</eventType><movie><movieId>1</movieId><title>T</title>"
        .. "<premiereDate>2020-01-01</premiereDate><lastModified>2020-01-01T00:00:00.000Z"
        .. "</lastModified><resourceURL>http://m/1</resourceURL></movie>"
        .. "<changedFields>genre</changedFields>"
        .. '<previous><genre xsi:nil="true"/></previous><link rel="r" href="http://h"/>'
        .. "</mv:movieNotification>", x)
      assert.same(value, mv.read("xml", "movieNotification", x))
      value.previous = { genre = "Drama" }
      x = mv.element("movieNotification", value)
      assert.is_nil(x:find("xsi", 1, true))
      -- Content in a nil element is refused; null where nothing is
      -- nillable is absence, as before.
      local nilled = x:gsub("<genre>Drama</genre>", '<genre xmlns:xsi="' .. xml.XSI_NS
        .. '" xsi:nil="true">Drama</genre>')
      assert_svc0002("previous.genre", select(2, mv.read("xml", "movieNotification", nilled)))
      assert.is_nil(mv.read("json", "movieNotification", (j:gsub('"link":{[^}]*}', '"link":null'))))
      -- An attribute the Link type does not have.
      assert_svc0002("link.colour", select(2, mv.read("xml", "movieNotification",
        (x:gsub('<link ', '<link colour="red" ')))))
    end)

    describe("hooks, on a schema of their own", function()
      -- Shapes whose data type follows their kind, a log root read and
      -- written by other code, a form, and a root that may come empty.
      local T = {
        NAMESPACE = "urn:test:shapes",
        PREFIX = "s",
        roots = { shape = "Shape", log = "Log", ping = "Ping" },
        types = {
          Shape = {
            { name = "data", kind = "Data", required = false, repeatable = false },
            { name = "kind", kind = "string", required = true, repeatable = false },
          },
          Data = {},
          CircleData = { { name = "r", kind = "int", required = true, repeatable = false } },
          OtherData = {},
          Log = {},
          Ping = {},
        },
        abstract = {
          Data = {
            discriminator = "kind",
            concrete = function(kind)
              if kind == "Circle" then
                return "CircleData", true
              end
              return "OtherData", false
            end,
            xsi_name = function(kind) return tostring(kind) .. "Data" end,
          },
        },
        opaque = {
          Log = {
            from_json = function(text) return { text = text } end,
            from_xml = function(node) return { children = #node.children } end,
            to_json = function(v) return '{"log":' .. json.encode(v.line) .. "}" end,
            to_xml = function(v) return "<line>" .. xml.escape(v.line) .. "</line>" end,
            empty = function() return { line = "" } end,
          },
        },
        may_be_empty = { ping = true },
        decode_form = function(body, root) return { form = body, root = root } end,
      }
      function T.fields(name) return assert(T.types[name]) end
      function T.is_scalar(kind) return kind == "string" or kind == "int" end
      local c = rep.new(T)

      it("reads the discriminator first and types the abstract element by it", function()
        -- "data" comes before "kind" in the schema, and in the document.
        assert.same({ kind = "Circle", data = { r = 2 } },
          c.decode(req(JSON, '{"shape":{"data":{"r":"2"},"kind":"Circle"}}'), "shape"))
        assert_svc0002("data.r", select(2, c.decode(req(JSON,
          '{"shape":{"data":{},"kind":"Circle"}}'), "shape")))
        assert_svc0002("data.r", select(2, c.decode(req(JSON,
          '{"shape":{"data":{"r":1},"kind":"Square"}}'), "shape")))
        local x = c.encode("xml", "shape", { kind = "Circle", data = { r = 2 } })
        assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n<s:shape xmlns:s="urn:test:shapes" '
          .. XSI .. '><data xsi:type="s:CircleData"><r>2</r></data><kind>Circle</kind></s:shape>', x)
        assert.same({ kind = "Circle", data = { r = 2 } }, c.decode(req(XML, x), "shape"))
        assert_svc0002("data", select(2, c.decode(req(XML, (x:gsub("s:CircleData", "s:OtherData"))),
          "shape")))
        -- No xsi:type for a type the hook does not know, so no xsi at all.
        assert.matches('<s:shape xmlns:s="urn:test:shapes"><data></data><kind>Square</kind>',
          c.encode("xml", "shape", { kind = "Square", data = {} }), 1, true)
      end)

      it("leaves opaque roots, forms and empty bodies to the hooks", function()
        assert.same({ text = '{"log":1}' }, c.decode(req(JSON, '{"log":1}'), "log"))
        assert.same({ children = 2 }, c.decode(req(XML,
          '<s:log xmlns:s="urn:test:shapes"><a/><b/></s:log>'), "log"))
        assert.equal('{"log":"a<"}', c.encode("json", "log", { line = "a<" }))
        assert.equal("<s:log xmlns:s=\"urn:test:shapes\"><line>a&lt;</line></s:log>",
          c.element("log", { line = "a<" }))
        assert.same({ line = "" }, c.decode(req(JSON, ""), "log", { allow_empty = true }))
        assert.same({}, c.decode(req(JSON, " "), "ping"))
        assert_svc0002("shape", select(2, c.decode(req(JSON, ""), "shape")))
        assert.same({ form = "x=1", root = "shape" }, c.decode(req(FORM, "x=1"), "shape", { form = true }))
        assert.equal("SVC3002", select(2, c.decode(req(FORM, "x=1"), "shape")).id)
      end)

      it("refuses a types module without the essentials", function()
        for _, k in ipairs({ "NAMESPACE", "PREFIX", "roots", "fields", "is_scalar" }) do
          local partial = {}
          for name, v in pairs(T) do
            partial[name] = v
          end
          partial[k] = nil
          assert.has_error(function() rep.new(partial) end)
        end
      end)
    end)
  end)
end)
