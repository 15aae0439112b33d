local types = require("movies.subscriptions.types")
local json = require("codec.json")
local notification = require("codec.notification")
local xml = require("codec.xml")
local changes = require("movies.changes")
local notify = require("movies.notify")
local represent = require("movies.subscriptions.represent")

describe("movies.subscriptions.types", function()
  it("names our own namespace, not an OMA one", function()
    assert.equal("urn:ncserver:xml:movies:1", types.NAMESPACE)
    assert.equal("mv", types.PREFIX)
  end)

  it("gives every element a scalar kind or a type of the schema", function()
    for name, fields in pairs(types.types) do
      local seen = {}
      for _, e in ipairs(fields) do
        assert.is_nil(seen[e.name], name .. "." .. e.name .. " twice")
        seen[e.name] = true
        assert.is_true(types.is_scalar(e.kind) or types.types[e.kind] ~= nil,
          name .. "." .. e.name)
        assert.is_boolean(e.required)
        assert.is_boolean(e.repeatable)
        assert.is_boolean(e.nillable)
        assert.is_false(e.nillable and e.repeatable, name .. "." .. e.name)
      end
    end
  end)

  it("maps its roots to types", function()
    assert.equal("MovieSubscription", types.roots.movieSubscription)
    assert.equal("MovieSubscriptionList", types.roots.movieSubscriptionList)
    assert.equal("MovieNotification", types.roots.movieNotification)
    for _, t in pairs(types.roots) do
      assert.is_table(types.fields(t))
    end
  end)

  it("lists the subscription's elements in API.md 3's order", function()
    local names = {}
    for i, e in ipairs(types.fields("MovieSubscription")) do
      names[i] = e.name
    end
    assert.same({ "callbackReference", "filter", "clientCorrelator", "duration",
      "resourceURL" }, names)
    names = {}
    for i, e in ipairs(types.fields("CallbackReference")) do
      names[i] = e.name
    end
    assert.same({ "notifyURL", "callbackData", "notificationFormat" }, names)
  end)

  it("raises for an unknown type", function()
    assert.has_error(function() types.fields("Nope") end)
  end)

  it("lists the notification's elements in movies/notify.lua's order", function()
    local function names(type_name)
      local out = {}
      for i, e in ipairs(types.fields(type_name)) do
        out[i] = e.name
      end
      return out
    end
    assert.same({ "callbackData", "eventType", "movie", "changedFields", "previous", "link" },
      names("MovieNotification"))
    local movie = { "movieId", "title", "premiereDate", "director", "genre", "lastModified",
      "resourceURL" }
    assert.same(movie, names("Movie"))
    assert.same(movie, names("PreviousMovie"))
    for _, e in ipairs(types.fields("PreviousMovie")) do
      assert.is_false(e.required)
      assert.is_true(e.nillable)
    end
    assert.is_true(types.attributes.Link)
  end)

  -- movieNotification is described so that a long poll in the format it was
  -- not stored in converts it typed (codec/notification, registered by the
  -- subscriptions area at start): what comes out must be what notify.lua
  -- writes natively in that format.
  describe("movieNotification converted, against notify.lua's own output", function()
    local URL = "http://nc.example:8080"
    local SUB = "/movies/v1/tel%3A%2B1/subscriptions/s1"
    local ROW = { movie_id = 7, title = "Up", premiere_date = "2009-05-13",
      director = "Pete Docter", genre = "Animation", last_modified = "2025-11-28T12:00:00.000Z" }

    local function copy(t, extra)
      local out = {}
      for k, v in pairs(t) do
        out[k] = v
      end
      for k, v in pairs(extra or {}) do
        out[k] = v ~= false and v or nil
      end
      return out
    end

    -- Change records as movies/changes.lua makes them.
    local CHANGES = {
      created = function()
        return { event = changes.CREATED, movie_id = 7, previous = {},
          changed = { "title", "premiereDate", "director", "genre" }, new = copy(ROW) }
      end,
      -- genre had no value before: previous holds null / xsi:nil.
      updated = function()
        local old = copy(ROW, { genre = false })
        local new = copy(ROW, { premiere_date = "2009-06-01",
          last_modified = "2025-11-28T12:00:01.000Z" })
        return { event = changes.UPDATED, movie_id = 7, changed = { "premiereDate", "genre" },
          previous = { premiereDate = "2009-05-13", genre = json.null }, old = old, new = new }
      end,
      deleted = function()
        local old = copy(ROW, { director = false })
        return { event = changes.DELETED, movie_id = 7, changed = { "title", "premiereDate",
          "genre" }, previous = { title = "Up", premiereDate = "2009-05-13",
          genre = "Animation" }, old = old }
      end,
    }

    -- notify.lua's notification of `change` for a subscription with
    -- callbackData `data` (nil: none), in `format`.
    local function native(change, format, data)
      local t = notify.templates(change, URL)
      local cb = format == "json" and represent.callback_data_json(data)
        or represent.callback_data_xml(data)
      return notify.fill(t[format], format, cb, SUB)
    end

    local function item(format, body)
      return { root = notify.ROOT, format = format, body = body }
    end

    -- Equal JSON texts but for key order and whitespace: codec/json sorts
    -- keys, and a number stays a number, a string a string.
    local function same_json(want, got)
      assert.equal(json.encode(assert(json.decode(want))), json.encode(assert(json.decode(got))))
    end

    -- Equal XML but for how the text is escaped (notify.lua writes the
    -- quotes of callbackData as references).
    local function same_xml(want, got)
      assert.equal(xml.serialize(assert(xml.parse(want))), xml.serialize(assert(xml.parse(got))))
    end

    before_each(function()
      notification.register(notify.ROOT, types)
    end)
    after_each(function()
      notification.register(notify.ROOT, nil)
    end)

    for _, event in ipairs({ "created", "updated", "deleted" }) do
      for _, data in ipairs({ false, "x", 'say "hi" <&> \\ it\'s \u{1F3AC}\t\r\n' }) do
        local label = event .. (data and (" with callbackData " .. string.format("%q", data))
          or " without callbackData")
        data = data or nil

        it("XML -> JSON: " .. label, function()
          local change = CHANGES[event]()
          local got = notification.to_json(item("xml", native(change, "xml", data)))
          same_json(native(change, "json", data), got)
          -- A number, as API.md 2 has xsd:int values (cjson reads it as a float).
          assert.truthy(got:find('"movieId":7[,}]'), got)
          assert.equal(data, json.decode(got).movieNotification.callbackData)
        end)

        it("JSON -> XML: " .. label, function()
          local change = CHANGES[event]()
          local want = native(change, "xml", data)
          local got = notification.to_xml(item("json", native(change, "json", data)))
          same_xml(want, got)
          if not (data or ""):find("[\"']") then
            -- Byte for byte, where notify.lua has no quote to escape.
            assert.equal(want, got)
          end
          local root = assert(xml.parse(got))
          assert.equal(types.NAMESPACE, root.ns)
          assert.equal("mv", root.prefix)
        end)
      end
    end

    it("writes a null previous value as xsi:nil and declares xsi only then", function()
      local got = notification.to_xml(item("json", native(CHANGES.updated(), "json")))
      assert.truthy(got:find('<previous><premiereDate>2009-05-13</premiereDate>'
        .. '<genre xsi:nil="true"/></previous>', 1, true), got)
      assert.truthy(got:find(' xmlns:xsi="' .. xml.XSI_NS .. '"', 1, true))
      got = notification.to_xml(item("json", native(CHANGES.deleted(), "json")))
      assert.is_nil(got:find("xsi", 1, true))
      local back = json.decode(notification.to_json(item("xml",
        native(CHANGES.updated(), "xml")))).movieNotification
      assert.equal(json.null, back.previous.genre)
    end)

    it("writes the link as attributes and changedFields as an array of one", function()
      local change = CHANGES.updated()
      change.changed, change.previous = { "premiereDate" }, { premiereDate = "2009-05-13" }
      local got = notification.to_xml(item("json", native(change, "json")))
      assert.truthy(got:find('<changedFields>premiereDate</changedFields><previous>', 1, true))
      assert.truthy(got:find('<link rel="MovieSubscription" href="' .. URL .. SUB .. '"/>',
        1, true), got)
      local doc = json.decode(notification.to_json(item("xml", native(change, "xml"))))
      assert.same({ "premiereDate" }, doc.movieNotification.changedFields)
      assert.same({ rel = "MovieSubscription", href = URL .. SUB }, doc.movieNotification.link)
    end)

    it("converts generically what does not fit the schema, as for any enabler", function()
      -- A movieNotification someone POSTed to a callbackURL themselves.
      assert.equal("<movieNotification><eventType>MovieCreated</eventType></movieNotification>",
        notification.to_xml(item("json", '{"movieNotification":{"eventType":"MovieCreated"}}')))
      assert.same({ movieNotification = { movie = { movieId = "7" } } },
        json.decode(notification.to_json(item("xml",
          "<movieNotification><movie><movieId>7</movieId></movie></movieNotification>"))))
    end)
  end)
end)
