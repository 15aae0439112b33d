local validate = require("movies.subscriptions.validate")

local URL = "http://nc.example:8080/notificationchannel/v1/callbacks/cb1"

describe("movies.subscriptions.validate", function()
  local function doc(extra, ref)
    local d = { callbackReference = { notifyURL = URL } }
    for k, v in pairs(ref or {}) do
      d.callbackReference[k] = v
    end
    for k, v in pairs(extra or {}) do
      d[k] = v
    end
    return d
  end

  local function refused(d, name)
    local values, err = validate.create(d)
    assert.is_nil(values)
    assert.equal("SVC0002", err.id)
    assert.equal(400, err.status)
    assert.same({ name }, err.variables)
  end

  it("takes what the client asked for", function()
    assert.same({ notify_url = URL, callback_data = "abc", notification_format = "xml",
      movie_ids = { 1, 2 }, client_correlator = "c1", duration = 7200 },
      validate.create(doc({ filter = { movieId = { 2, 1 } }, clientCorrelator = "c1",
        duration = 7200 }, { callbackData = "abc", notificationFormat = "XML" })))
  end)

  it("defaults to JSON notifications about every movie", function()
    assert.same({ notify_url = URL, notification_format = "json" }, validate.create(doc()))
    assert.equal("json", validate.create(doc(nil, { notificationFormat = "JSON" }))
      .notification_format)
  end)

  it("keeps callbackData and clientCorrelator verbatim", function()
    local values = validate.create(doc({ clientCorrelator = "  x  " },
      { callbackData = "  <a & 'b'> \"c\"\n\t" }))
    assert.equal("  <a & 'b'> \"c\"\n\t", values.callback_data)
    assert.equal("  x  ", values.client_correlator)
    values = validate.create(doc({ clientCorrelator = "" }, { callbackData = "" }))
    assert.equal("", values.callback_data)
    assert.equal("", values.client_correlator)
  end)

  it("collapses duplicate movieIds and sorts them", function()
    assert.same({ 1, 3, 7 },
      validate.create(doc({ filter = { movieId = { 7, 3, 7, 1, 3 } } })).movie_ids)
  end)

  it("takes duration 0, which the policy raises to its minimum", function()
    assert.equal(0, validate.create(doc({ duration = 0 })).duration)
  end)

  it("refuses a document that is no object", function()
    refused(nil, "movieSubscription")
    refused("x", "movieSubscription")
  end)

  it("refuses resourceURL, which is the server's to fill", function()
    refused(doc({ resourceURL = "http://x" }), "resourceURL")
  end)

  it("needs a notifyURL", function()
    refused({}, "callbackReference")
    refused({ callbackReference = {} }, "callbackReference.notifyURL")
    refused(doc(nil, { notifyURL = "" }), "callbackReference.notifyURL")
    refused(doc(nil, { notifyURL = 5 }), "callbackReference.notifyURL")
  end)

  it("refuses notification formats other than JSON and XML", function()
    for _, v in ipairs({ "json", "xml", "Json", "", "HTML", 1 }) do
      refused(doc(nil, { notificationFormat = v }), "callbackReference.notificationFormat")
    end
  end)

  it("refuses callbackData that XML 1.0 cannot carry", function()
    for _, v in ipairs({ "a\0b", "\1", "x\27[0m", "\12", "\255", 5 }) do
      refused(doc(nil, { callbackData = v }), "callbackReference.callbackData")
    end
  end)

  it("refuses a filter without movieIds, or with ones that are not positive integers", function()
    refused(doc({ filter = {} }), "filter.movieId")
    refused(doc({ filter = { movieId = {} } }), "filter.movieId")
    refused(doc({ filter = { movieId = { 0 } } }), "filter.movieId")
    refused(doc({ filter = { movieId = { 1, -2 } } }), "filter.movieId")
    refused(doc({ filter = { movieId = { 1.5 } } }), "filter.movieId")
    refused(doc({ filter = { movieId = { "1" } } }), "filter.movieId")
    refused(doc({ filter = "all" }), "filter")
  end)

  it("refuses more than MAX_FILTER_IDS distinct movieIds", function()
    local ids = {}
    for i = 1, validate.MAX_FILTER_IDS do
      ids[i] = i
    end
    ids[#ids + 1] = 1 -- a duplicate does not count
    assert.equal(validate.MAX_FILTER_IDS,
      #validate.create(doc({ filter = { movieId = ids } })).movie_ids)
    ids[#ids + 1] = validate.MAX_FILTER_IDS + 1
    refused(doc({ filter = { movieId = ids } }), "filter.movieId")
  end)

  it("refuses a negative or fractional duration", function()
    refused(doc({ duration = -1 }), "duration")
    refused(doc({ duration = 1.5 }), "duration")
    refused(doc({ duration = "60" }), "duration")
  end)

  it("refuses a clientCorrelator that is no string", function()
    refused(doc({ clientCorrelator = 5 }), "clientCorrelator")
  end)

  it("caps clientCorrelator at a channel's 256 characters, not bytes", function()
    assert.equal(256, validate.MAX_CORRELATOR_CHARS)
    -- 256 two-byte characters are 512 bytes, and fine.
    local long = string.rep("\u{e9}", 256)
    assert.equal(long, validate.create(doc({ clientCorrelator = long })).client_correlator)
    refused(doc({ clientCorrelator = string.rep("x", 257) }), "clientCorrelator")
    refused(doc({ clientCorrelator = long .. "x" }), "clientCorrelator")
    refused(doc({ clientCorrelator = string.rep("x", 1000000) }), "clientCorrelator")
  end)

  it("caps callbackData at 1024 characters, not bytes", function()
    assert.equal(1024, validate.MAX_CALLBACK_DATA_CHARS)
    -- 1024 three-byte characters are 3072 bytes, and fine.
    local long = string.rep("\u{20ac}", 1024)
    assert.equal(long, validate.create(doc(nil, { callbackData = long })).callback_data)
    refused(doc(nil, { callbackData = string.rep("x", 1025) }), "callbackReference.callbackData")
    refused(doc(nil, { callbackData = long .. "x" }), "callbackReference.callbackData")
    refused(doc(nil, { callbackData = string.rep("x", 1000000) }),
      "callbackReference.callbackData")
  end)
end)
