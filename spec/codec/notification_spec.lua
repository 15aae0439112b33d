local notification = require("codec.notification")
local json = require("codec.json")
local xml = require("codec.xml")
local rep = require("codec.representation")
local fx = require("fixtures.nc_fixtures")

local NC = "urn:oma:xml:rest:netapi:notificationchannel:1"

local function split(content_type, body)
  return notification.split(fx.request(content_type, body))
end

local function roots(list)
  local out = {}
  for i, item in ipairs(list) do
    out[i] = item.root .. "/" .. item.format
  end
  return out
end

local function assert_not_notification(list, err)
  assert.is_nil(list)
  assert.equal("SVC0002", err.id)
  assert.equal(400, err.status)
  assert.same({ "notification" }, err.variables)
end

describe("codec.notification", function()
  describe("split JSON", function()
    it("takes one notification, its text as sent", function()
      local body = '{"movieNotification": {"movie": {"title": "Up", "year": 2009, "big": 12345678901234567890}}}'
      local list = assert(split("application/json; charset=utf-8", body))
      assert.same({ "movieNotification/json" }, roots(list))
      assert.equal('{"movieNotification":{"movie": {"title": "Up", "year": 2009, "big": 12345678901234567890}}}',
        list[1].body)
      assert.same({ movieNotification = { movie = { title = "Up", year = 2009, big = 12345678901234567890 } } },
        json.decode(list[1].body))
    end)

    it("takes a notificationList array (D.13) in order", function()
      local list = assert(split("application/json", fx.load("D.13-response.json")))
      assert.same({ "inboundMessageNotification/json", "inboundMessageNotification/json",
        "presenceNotification/json" }, roots(list))
      for _, item in ipairs(list) do
        local doc = assert(json.decode(item.body))
        assert.is_table(doc[item.root])
      end
      assert.equal("msg1234", json.decode(list[2].body).inboundMessageNotification.inboundMessage.messageId)
    end)

    it("takes a notificationList object (D.12), and names repeated in an array", function()
      local list = assert(split("application/json", fx.load("D.12-response.json")))
      assert.same({ "presenceNotification/json" }, roots(list))
      list = assert(split("application/json",
        '{"notificationList":{"a":[{"n":1},{"n":2}],"b":{"n":3}}}'))
      assert.same({ "a/json", "a/json", "b/json" }, roots(list))
      assert.same({ { a = { n = 1 } }, { a = { n = 2 } }, { b = { n = 3 } } },
        { json.decode(list[1].body), json.decode(list[2].body), json.decode(list[3].body) })
    end)

    it("keeps strings with brackets, quotes and escapes intact", function()
      local body = '{"notificationList":[{"x":{"s":"}]\\"[{,","t":"\\\\"}},{"y":{"u":[1,{"v":"]"}]}}]}'
      local list = assert(split("application/json", body))
      assert.same({ "x/json", "y/json" }, roots(list))
      assert.same({ x = { s = '}]"[{,', t = "\\" } }, json.decode(list[1].body))
      assert.same({ y = { u = { 1, { v = "]" } } } }, json.decode(list[2].body))
    end)

    it("takes notifications written with trailing commas, as Appendix D does", function()
      local list = assert(split("application/json",
        '{"notificationList": [{"x": {"a": 1,},}, {"y": {}},],}'))
      assert.same({ "x/json", "y/json" }, roots(list))
      assert.same({ x = { a = 1 } }, json.decode(list[1].body))
      assert.same({ y = {} }, json.decode(list[2].body))
      list = assert(split("application/json", '{"movieNotification": {"a": 1,},}'))
      assert.same({ movieNotification = { a = 1 } }, json.decode(list[1].body))
    end)

    it("ignores a byte order mark before the body (RFC 8259 8.1)", function()
      local BOM = "\239\187\191"
      local list = assert(split("application/json", BOM .. '{"x":{"a":1}}'))
      assert.same({ "x/json" }, roots(list))
      assert.same({ x = { a = 1 } }, json.decode(list[1].body))
      list = assert(split("application/json", BOM .. '{"notificationList":[{"x":{}},{"y":{}}]}'))
      assert.same({ "x/json", "y/json" }, roots(list))
    end)

    it("refuses what holds no notification", function()
      for _, body in ipairs({ "[]", '"x"', "3", "null", "{}", '{"notificationList":[]}',
          '{"notificationList":null}', '{"notificationList":{}}', '{"a":{},"b":{}}', '{"a":1}',
          '{"a":"text"}', '{"a":[{}]}', '{"notificationList":[1]}', '{"notificationList":[{"a":1}]}',
          '{"notificationList":"x"}', " " }) do
        assert_not_notification(split("application/json", body))
      end
    end)

    it("refuses malformed JSON with SVC0001", function()
      local list, err = split("application/json", '{"a":{')
      assert.is_nil(list)
      assert.equal("SVC0001", err.id)
    end)
  end)

  describe("split with a limit", function()
    local function list_json(n, item)
      local items = {}
      for i = 1, n do
        items[i] = item or ('{"n":{"i":' .. i .. "}}")
      end
      return '{"notificationList":[' .. table.concat(items, ",") .. "]}"
    end

    local function too_many(limit, list, err)
      assert.is_nil(list)
      assert.equal("SVC0003", err.id)
      assert.equal(400, err.status)
      assert.same({ "notificationList", "at most " .. limit .. " notifications" }, err.variables)
    end

    it("takes a list of exactly the limit, and any list without one", function()
      assert.equal(3, #assert(notification.split(fx.request("application/json", list_json(3)), 3)))
      assert.equal(50, #assert(split("application/json", list_json(50))))
      -- A single notification is no list.
      assert.equal(1, #assert(notification.split(fx.request("application/json", '{"a":{}}'), 1)))
    end)

    for _, case in ipairs({
      { "an array (D.13)", list_json(4) },
      { "an array of empty notifications", list_json(4, '{"n":{}}') },
      { "names repeated in one object (D.12)", '{"notificationList":{"a":[{},{}],"b":{},"c":[{}]}}' },
      { "names repeated in array items", '{"notificationList":[{"a":[{},{}]},{"b":[{},{}]}]}' },
      { "a list holding an empty array", '{"notificationList":[{"e":[]},{"a":{}},{"b":{}},{"c":{}},{"d":{}}]}' },
    }) do
      it("refuses a longer list with SVC0003 naming the bound: " .. case[1], function()
        too_many(3, notification.split(fx.request("application/json", case[2]), 3))
      end)
    end

    it("counts an empty array as no notification", function()
      local list = assert(notification.split(fx.request("application/json",
        '{"notificationList":[{"e":[]},{"a":{}},{"b":[]},{"c":{}}]}'), 2))
      assert.same({ "a/json", "c/json" }, roots(list))
    end)

    it("stops reading at the bound: what follows it is never judged", function()
      -- The fourth item is no notification (SVC0002 without a limit).
      local body = '{"notificationList":[{"a":{}},{"b":{}},{"c":{}},{"d":1}]}'
      assert_not_notification(split("application/json", body))
      too_many(2, notification.split(fx.request("application/json", body), 2))
      -- Also where the count on cjson's value cannot tell (an empty array).
      body = '{"notificationList":[{"a":{}},{"e":[]},{"b":{}},{"c":{}},{"d":1}]}'
      too_many(2, notification.split(fx.request("application/json", body), 2))
    end)

    it("refuses a list past the bound on cjson's value, before judging any item", function()
      -- Its first item is no notification; the count comes first.
      local body = '{"notificationList":[{"a":1},{"b":{}},{"c":{}},{"d":{}}]}'
      assert_not_notification(split("application/json", body))
      too_many(2, notification.split(fx.request("application/json", body), 2))
    end)

    it("refuses a longer XML list, and takes one of exactly the limit", function()
      local function xml_list(n)
        return '<nc:notificationList xmlns:nc="' .. NC .. '">' .. string.rep("<a/>", n)
          .. "<ncListComplete>true</ncListComplete></nc:notificationList>"
      end
      assert.equal(3, #assert(notification.split(fx.request("application/xml", xml_list(3)), 3)))
      too_many(3, notification.split(fx.request("application/xml", xml_list(4)), 3))
    end)
  end)

  describe("split XML", function()
    it("takes any root element as one notification", function()
      local list = assert(split("application/xml", fx.load("6.3.5.4-response.xml")))
      assert.same({ "presenceNotification/xml" }, roots(list))
      local node = assert(xml.parse(list[1].body))
      assert.equal("urn:oma:xml:rest:netapi:presence:1", node.ns)
      assert.equal("pr:presenceNotification", node.name)
    end)

    it("takes every child of an NC notificationList, each standing alone", function()
      local list = assert(split("text/xml", fx.load("6.3.5.2-response.xml")))
      assert.same({ "presenceNotification/xml", "inboundMessageNotification/xml",
        "inboundMessageNotification/xml" }, roots(list))
      local node = assert(xml.parse(list[3].body))
      assert.equal("urn:oma:xml:rest:netapi:messaging:1", node.ns)
      assert.equal("msg1234", xml.text(xml.elements(xml.elements(node)[1])[5]))
    end)

    it("carries declarations made on the list down to its items", function()
      local list = assert(split("application/xml", '<nc:notificationList xmlns:nc="' .. NC
        .. '" xmlns:m="urn:m" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. '<m:movieNotification xsi:type="m:T"><title>Up</title></m:movieNotification>'
        .. "<ncListComplete>true</ncListComplete></nc:notificationList>"))
      assert.same({ "movieNotification/xml" }, roots(list))
      local node = assert(xml.parse(list[1].body))
      assert.equal("urn:m", node.ns)
      assert.same({ "urn:m", "T" }, { xml.resolve_qname(node, xml.attribute(node, xml.XSI_NS, "type")) })
    end)

    it("treats a notificationList outside the NC namespace as one notification", function()
      local list = assert(split("application/xml", '<notificationList xmlns="urn:other"><a/></notificationList>'))
      assert.same({ "notificationList/xml" }, roots(list))
    end)

    it("refuses an empty list or text in it", function()
      assert_not_notification(split("application/xml", '<nc:notificationList xmlns:nc="' .. NC .. '"/>'))
      assert_not_notification(split("application/xml", '<nc:notificationList xmlns:nc="' .. NC .. '">x<a/></nc:notificationList>'))
      assert_not_notification(split("application/xml", ""))
    end)

    it("refuses malformed XML and DOCTYPEs with SVC0001", function()
      for _, body in ipairs({ "<a>", "<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><a>&e;</a>", "x" }) do
        local list, err = split("application/xml", body)
        assert.is_nil(list)
        assert.equal("SVC0001", err.id)
      end
    end)
  end)

  it("answers 415 for other content types", function()
    for _, ct in ipairs({ "text/plain", "application/x-www-form-urlencoded" }) do
      local list, err = split(ct, "{}")
      assert.is_nil(list)
      assert.equal("SVC3002", err.id)
      assert.equal(415, err.status)
    end
    local list, err = notification.split({ headers = {}, body = "{}" })
    assert.is_nil(list)
    assert.same({ "(none)", "application/json, application/xml" }, err.variables)
  end)

  describe("conversion", function()
    it("turns XML into JSON by the OMA JSON rules (6.3.5.1 -> D.12)", function()
      local xml_list = assert(split("application/xml", fx.load("6.3.5.1-response.xml")))
      local json_list = assert(split("application/json", fx.load("D.12-response.json")))
      local from_xml = json.decode(notification.to_json(xml_list[1]))
      local want = json.decode(json_list[1].body)
      -- The href is wrapped differently in the two examples.
      from_xml.presenceNotification.link.href = nil
      want.presenceNotification.link.href = nil
      assert.same(want, from_xml)
    end)

    it("makes repeated elements arrays, keeps text beside attributes", function()
      local item = assert(split("application/xml", '<m:n xmlns:m="urn:m" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        .. ' xsi:type="m:T" id="7"><a>1</a><a>2</a><a>3</a><b k="v">t</b><c/></m:n>'))[1]
      assert.same({ n = { id = "7", a = { "1", "2", "3" }, b = { k = "v", ["$"] = "t" }, c = "" } },
        json.decode(notification.to_json(item)))
    end)

    it("turns JSON into unqualified XML", function()
      local item = assert(split("application/json",
        '{"movieNotification":{"title":"<Up>","year":2009,"ok":true,"tags":["a","b"],"none":null,"$":"x"}}'))[1]
      local text = notification.to_xml(item)
      assert.equal("<movieNotification>x<none></none><ok>true</ok><tags>a</tags><tags>b</tags>"
        .. "<title>&lt;Up&gt;</title><year>2009</year></movieNotification>", text)
      assert.is_table(xml.parse(text))
    end)

    it("passes a notification on untouched in its own format", function()
      local item = { root = "x", format = "json", body = '{"x": {"n": 1.50}}' }
      assert.equal(item.body, notification.to_json(item))
      item = { root = "x", format = "xml", body = '<x xmlns="urn:x"/>' }
      assert.equal(item.body, notification.to_xml(item))
    end)
  end)

  describe("conversion with a registered schema", function()
    -- An enabler's notification schema, in the shape codec/representation
    -- takes: an int, a repeated string, a nillable element, a Link.
    local T = {
      NAMESPACE = "urn:test:weather",
      PREFIX = "w",
      roots = { weatherNotification = "WeatherNotification", other = "Other" },
      types = {
        WeatherNotification = {
          { name = "station", kind = "string", required = true, repeatable = false },
          { name = "degrees", kind = "int", required = true, repeatable = false },
          { name = "warning", kind = "string", required = false, repeatable = true },
          { name = "wind", kind = "string", required = false, repeatable = false, nillable = true },
          { name = "link", kind = "Link", required = false, repeatable = false },
        },
        Link = {
          { name = "rel", kind = "string", required = true, repeatable = false },
          { name = "href", kind = "string", required = true, repeatable = false },
        },
        Other = {},
      },
      attributes = { Link = true },
    }
    function T.fields(name) return assert(T.types[name]) end
    function T.is_scalar(kind) return kind == "string" or kind == "int" end

    local XML_FORM = '<w:weatherNotification xmlns:w="urn:test:weather"'
      .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
      .. "<station>Oslo</station><degrees>-3</degrees><warning>ice</warning>"
      .. '<wind xsi:nil="true"/><link rel="station" href="http://w/oslo"/></w:weatherNotification>'
    local JSON_FORM = '{"weatherNotification":{"degrees":-3,"link":{"href":"http://w/oslo",'
      .. '"rel":"station"},"station":"Oslo","warning":["ice"],"wind":null}}'

    local function item(format, body)
      return { root = "weatherNotification", format = format, body = body }
    end

    before_each(function()
      notification.register("weatherNotification", T)
    end)
    after_each(function()
      notification.register("weatherNotification", nil)
    end)

    it("writes XML as JSON by the schema: ints numbers, one repeat an array, nil null", function()
      assert.equal(JSON_FORM, notification.to_json(item("xml", XML_FORM)))
    end)

    it("writes JSON as XML by the schema: namespace, order, attributes, xsi:nil", function()
      assert.equal(XML_FORM, notification.to_xml(item("json",
        '{"weatherNotification":{"wind":null,"warning":"ice","station":"Oslo",'
        .. '"link":{"rel":"station","href":"http://w/oslo"},"degrees":"-3"}}')))
    end)

    it("passes a notification on untouched in its own format", function()
      assert.equal(XML_FORM, notification.to_xml(item("xml", XML_FORM)))
      assert.equal('{"weatherNotification": 1}', notification.to_json(item("json",
        '{"weatherNotification": 1}')))
    end)

    it("converts generically what does not fit the schema", function()
      -- No degrees; another namespace; an element the schema lacks.
      assert.equal("<weatherNotification><station>Oslo</station></weatherNotification>",
        notification.to_xml(item("json", '{"weatherNotification":{"station":"Oslo"}}')))
      assert.same({ weatherNotification = { station = "Oslo", degrees = "1" } },
        json.decode(notification.to_json(item("xml", '<o:weatherNotification xmlns:o="urn:o">'
          .. "<station>Oslo</station><degrees>1</degrees></o:weatherNotification>"))))
      assert.same({ weatherNotification = { station = "Oslo", degrees = "1", rain = "" } },
        json.decode(notification.to_json(item("xml", '<w:weatherNotification xmlns:w="urn:test:weather">'
          .. "<station>Oslo</station><degrees>1</degrees><rain/></w:weatherNotification>"))))
    end)

    it("applies to the registered root only, and no longer once unregistered", function()
      local other = { root = "other", format = "json", body = '{"other":{"n":1}}' }
      assert.equal("<other><n>1</n></other>", notification.to_xml(other))
      notification.register("weatherNotification", nil)
      assert.same({ weatherNotification = { station = "Oslo", degrees = "-3", warning = "ice",
        wind = "", link = { rel = "station", href = "http://w/oslo" } } },
        json.decode(notification.to_json(item("xml", XML_FORM))))
    end)

    it("refuses a schema without the root (a bug in the enabler)", function()
      assert.has_error(function() notification.register("rainNotification", T) end)
    end)

    it("converts in a notificationList too", function()
      local body = rep.encode("xml", "notificationList",
        { notifications = { item("json", JSON_FORM) } })
      assert.truthy(body:find(XML_FORM, 1, true), body)
      body = rep.encode("json", "notificationList", { notifications = { item("xml", XML_FORM) } })
      assert.equal('{"notificationList":[' .. JSON_FORM .. "]}", body)
    end)
  end)

  describe("a notificationList through codec/representation", function()
    local items = {
      { root = "a", format = "json", body = '{"a":{"n":1}}' },
      { root = "b", format = "xml", body = '<p:b xmlns:p="urn:p"><n>2</n></p:b>' },
    }

    it("encodes JSON as an array of one-key objects", function()
      local body = rep.encode("json", "notificationList", { notifications = items })
      assert.equal('{"notificationList":[{"a":{"n":1}},{"b":{"n":"2"}}]}', body)
      assert.same({ notificationList = { { a = { n = 1 } }, { b = { n = "2" } } } }, json.decode(body))
    end)

    it("encodes XML with each notification as a child of nc:notificationList", function()
      local body = rep.encode("xml", "notificationList", { notifications = items, ncListComplete = true })
      local root = assert(xml.parse(body))
      assert.equal(NC, root.ns)
      local kids = xml.elements(root)
      assert.same({ "a", "b", "ncListComplete" }, { kids[1].localname, kids[2].localname, kids[3].localname })
      assert.is_nil(kids[1].ns)
      assert.equal("urn:p", kids[2].ns)
      assert.equal("true", xml.text(kids[3]))
    end)

    it("reads back what it wrote, in both formats", function()
      for _, format in ipairs({ "json", "xml" }) do
        local body, ct = rep.encode(format, "notificationList", { notifications = items, ncListComplete = false })
        local v = assert(rep.decode(fx.request(ct, body), "notificationList"))
        assert.same({ "a/" .. format, "b/" .. format }, roots(v.notifications))
        assert.is_false(v.ncListComplete)
      end
    end)

    it("splits what it wrote, as a callback body", function()
      local body, ct = rep.encode("xml", "notificationList", { notifications = items })
      assert.same({ "a/xml", "b/xml" }, roots(assert(notification.split(fx.request(ct, body)))))
      body, ct = rep.encode("json", "notificationList", { notifications = items })
      assert.same({ "a/json", "b/json" }, roots(assert(notification.split(fx.request(ct, body)))))
    end)
  end)
end)
