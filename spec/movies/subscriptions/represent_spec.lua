local json = require("codec.json")
local xml = require("codec.xml")
local represent = require("movies.subscriptions.represent")

local P = "http://nc.example:8080"
local URL = P .. "/notificationchannel/v1/callbacks/cb1"

describe("movies.subscriptions.represent", function()
  describe("callbackData for the fan-out", function()
    it("is a JSON string literal with its quotes", function()
      assert.equal('"abc"', represent.callback_data_json("abc"))
      assert.equal('"a\\"b\\\\c\\n/"', represent.callback_data_json('a"b\\c\n/'))
      assert.equal('""', represent.callback_data_json(""))
      assert.is_nil(represent.callback_data_json(nil))
      -- It reads back as the data itself.
      for _, s in ipairs({ "abc", 'q"uo\'te', "<&>", "é ünï 😀", "\t\r\n" }) do
        assert.equal(s, json.decode(represent.callback_data_json(s)))
      end
    end)

    it("is XML character data with &, <, > and quotes escaped", function()
      assert.equal("abc", represent.callback_data_xml("abc"))
      assert.equal("a &amp; &lt;b&gt; &quot;c&quot; &apos;d&apos;",
        represent.callback_data_xml("a & <b> \"c\" 'd'"))
      assert.equal("x&#13;\n\ty", represent.callback_data_xml("x\r\n\ty"))
      assert.equal("", represent.callback_data_xml(""))
      assert.is_nil(represent.callback_data_xml(nil))
      -- It reads back as the data itself in an element, and (without
      -- line breaks, which attributes normalise) in either kind of
      -- quoted attribute.
      for _, s in ipairs({ "abc", 'q"uo\'te', "<&>", "é ünï", "a\r\nb" }) do
        local e = represent.callback_data_xml(s)
        assert.equal(s, xml.text(assert(xml.parse("<d>" .. e .. "</d>"))))
        if not s:find("[\r\n]") then
          local node = assert(xml.parse('<d a="' .. e .. "\" b='" .. e .. "'/>"))
          assert.equal(s, node.attrs[1].value)
          assert.equal(s, node.attrs[2].value)
        end
      end
    end)
  end)

  local ROW = {
    subscription_id = "s1", user_id = "tel:+1", channel_id = "c1",
    notify_url = URL, callback_data = "abc", notification_format = "xml",
    resource_path = "/movies/v1/tel%3A%2B1/subscriptions/s1", all_movies = 0,
    client_correlator = "c1", duration = 7200.0, expires_at = 1, created_at = 0,
  }

  it("represents a filtered subscription", function()
    assert.same({
      callbackReference = { notifyURL = URL, callbackData = "abc",
        notificationFormat = "XML" },
      filter = { movieId = { 1, 2 } },
      clientCorrelator = "c1",
      duration = 7200,
      resourceURL = P .. "/movies/v1/tel%3A%2B1/subscriptions/s1",
    }, represent.subscription(P, ROW, { 1, 2 }))
    assert.equal("integer", math.type(represent.subscription(P, ROW, { 1 }).duration))
  end)

  it("leaves out the filter, and what was not given, for every movie", function()
    local row = { subscription_id = "s2", notify_url = URL, notification_format = "json",
      resource_path = "/p", all_movies = 1, duration = 60 }
    assert.same({
      callbackReference = { notifyURL = URL, notificationFormat = "JSON" },
      duration = 60,
      resourceURL = P .. "/p",
    }, represent.subscription(P, row, nil))
  end)

  it("lists subscriptions with their filters and the list's URL", function()
    local all = { subscription_id = "s2", notify_url = URL, notification_format = "json",
      resource_path = "/p2", all_movies = 1, duration = 60 }
    local list = represent.list(P, "tel:+1", { ROW, all }, { s1 = { 5 } })
    assert.equal(P .. "/movies/v1/tel%3A%2B1/subscriptions", list.resourceURL)
    assert.equal(2, #list.movieSubscription)
    assert.same({ movieId = { 5 } }, list.movieSubscription[1].filter)
    assert.is_nil(list.movieSubscription[2].filter)
    assert.same({}, represent.list(P, "u", {}, {}).movieSubscription)
  end)
end)
