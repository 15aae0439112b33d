local request = require("http.request")

local function req(content_type, body)
  return { headers = { ["content-type"] = content_type }, body = body }
end

describe("http.request", function()
  describe("media_type", function()
    it("lower-cases and drops parameters", function()
      assert.equal("application/json", request.media_type("Application/JSON; charset=UTF-8"))
      assert.equal("application/json", request.media_type("  application/json  "))
      assert.equal("text/plain", request.media_type("text/plain;x=1"))
    end)

    it("gives nil for absent or blank values", function()
      assert.is_nil(request.media_type(nil))
      assert.is_nil(request.media_type(""))
      assert.is_nil(request.media_type("   "))
    end)
  end)

  describe("json_object", function()
    it("decodes a JSON object body", function()
      assert.same({ movie = {} }, request.json_object(req("application/json", '{"movie":{}}'), "movie"))
    end)

    it("refuses other media types with 415", function()
      local v, err = request.json_object(req("application/json-seq", "{}"), "movie")
      assert.is_nil(v)
      assert.equal("SVC3002", err.id)
      assert.equal(415, err.status)
    end)

    it("refuses an empty body as a missing part", function()
      local _, err = request.json_object(req("application/json", " \r\n"), "movie")
      assert.equal("SVC0002", err.id)
      assert.same({ "movie" }, err.variables)
      _, err = request.json_object({ headers = { ["content-type"] = "application/json" } }, "x")
      assert.same({ "x" }, err.variables)
    end)

    it("refuses a key given twice in one object with SVC0002 naming it", function()
      local v, err = request.json_object(req("application/json",
        '{"movie":{"title":"A","genre":"x","title":"B"}}'), "movie")
      assert.is_nil(v)
      assert.equal("SVC0002", err.id)
      assert.same({ "title" }, err.variables)
      assert.same({ a = { t = 1 }, b = { t = 2 } },
        request.json_object(req("application/json", '{"a":{"t":1},"b":{"t":2}}'), "movie"))
    end)

    it("ignores a leading byte order mark, as codec/json does for every body", function()
      assert.same({ movie = {} },
        request.json_object(req("application/json", '\239\187\191{"movie":{}}'), "movie"))
    end)

    it("refuses malformed JSON with SVC0001", function()
      local _, err = request.json_object(req("application/json", "{x"), "movie")
      assert.equal("SVC0001", err.id)
    end)

    it("copes with a request without headers", function()
      local _, err = request.json_object({ body = "{}" }, "movie")
      assert.equal("SVC3002", err.id)
    end)
  end)
end)
