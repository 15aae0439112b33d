local json = require("codec.json")
local errors = require("codec.errors")

describe("codec.json", function()
  describe("decode", function()
    it("decodes an object", function()
      local v = json.decode('{"movie":{"title":"Up","n":3,"ok":true}}')
      assert.same({ movie = { title = "Up", n = 3, ok = true } }, v)
    end)

    it("gives JSON null as json.null", function()
      assert.equal(json.null, json.decode('{"a":null}').a)
    end)

    local malformed = {
      "", "   ", "{", "{\"a\":}", "{\"a\":1} x", "{'a':1}", "{\"a\":NaN}",
      "Infinity", "0x10", "[,]", "[1,,]", "{\"a\" 1}", "\"unterminated",
      string.rep("[", 100000),
    }
    for _, text in ipairs(malformed) do
      it("refuses malformed input without raising: " .. text:sub(1, 20), function()
        local v, err = json.decode(text)
        assert.is_nil(v)
        assert.equal("SVC0001", err.id)
        assert.equal(400, err.status)
        assert.matches("^malformed JSON", err.variables[1])
      end)
    end

    it("refuses a non-string without raising", function()
      local v, err = json.decode(nil)
      assert.is_nil(v)
      assert.equal("SVC0001", err.id)
    end)

    describe("byte order mark (RFC 8259 8.1)", function()
      local BOM = "\239\187\191"

      it("ignores one at the start", function()
        assert.same({ a = 1 }, json.decode(BOM .. '{"a":1}'))
        assert.same({ a = 1 }, json.decode_object(BOM .. ' {"a":1}', "x"))
        -- Also with the trailing-comma looseness of Appendix D.
        assert.same({ a = 1 }, json.decode(BOM .. '{"a":1,}'))
      end)

      it("gives the text without it, for callers that scan the text", function()
        local v, parsed = json.decode_text(BOM .. '{"a":[1]}')
        assert.same({ a = { 1 } }, v)
        assert.equal('{"a":[1]}', parsed)
        v, parsed = json.decode_text(BOM .. '{"a":[1,]}')
        assert.same({ a = { 1 } }, v)
        assert.equal('{"a":[1]}', parsed)
      end)

      for _, text in ipairs({ BOM .. BOM .. "{}", " " .. BOM .. "{}", '{"a":1}' .. BOM,
          '{' .. BOM .. '"a":1}', BOM, "\254\255{}" }) do
        it("refuses one anywhere else, or alone: " .. text:gsub("[\128-\255]", "?"), function()
          local v, err = json.decode(text)
          assert.is_nil(v)
          assert.equal("SVC0001", err.id)
        end)
      end
    end)
  end)

  describe("decode_object", function()
    it("accepts an object root", function()
      assert.same({ a = 1 }, json.decode_object('{"a":1}'))
      assert.same({}, json.decode_object("{}"))
    end)

    for _, text in ipairs({ "[1,2]", '"x"', "3", "true", "null" }) do
      it("refuses the root " .. text .. " with SVC0002 naming the part", function()
        local v, err = json.decode_object(text, "movie")
        assert.is_nil(v)
        assert.equal("SVC0002", err.id)
        assert.same({ "movie" }, err.variables)
      end)
    end

    it("names the body by default", function()
      local _, err = json.decode_object("[1]")
      assert.same({ "body" }, err.variables)
    end)

    it("still reports malformed input as SVC0001", function()
      local _, err = json.decode_object("{", "movie")
      assert.equal("SVC0001", err.id)
    end)
  end)

  describe("is_object", function()
    it("tells objects from arrays and scalars", function()
      assert.is_true(json.is_object(json.decode('{"a":1}')))
      assert.is_true(json.is_object(json.decode("{}")))
      assert.is_false(json.is_object(json.decode("[1]")))
      assert.is_false(json.is_object("x"))
      assert.is_false(json.is_object(json.null))
    end)
  end)

  describe("encode", function()
    it("keeps marked arrays arrays when empty", function()
      assert.equal("[]", json.encode(json.array()))
      assert.equal('{"movie":[]}', json.encode({ movie = json.array() }))
    end)

    it("honours any metatable marked __jsontype", function()
      assert.equal("[]", json.encode(setmetatable({}, { __jsontype = "array" })))
      assert.equal("{}", json.encode(json.object()))
    end)

    it("encodes an unmarked empty table as an object", function()
      assert.equal("{}", json.encode({}))
    end)

    it("encodes sequences as arrays and sorts object keys", function()
      assert.equal('[1,"a",true]', json.encode({ 1, "a", true }))
      assert.equal('{"a":1,"b":2,"c":{"d":null}}',
        json.encode({ c = { d = json.null }, b = 2, a = 1 }))
    end)

    it("quotes keys that need escapes, and any number of distinct keys", function()
      -- Keys are quoted through a bounded cache: past its bound, and for
      -- long keys, they must still come out right.
      local t, want = {}, {}
      for i = 1, 3000 do
        local k = string.format("k%05d", i) .. (i % 7 == 0 and '"/\\' or "")
        t[k] = i
      end
      t[string.rep("x", 100)] = 0
      local back = json.decode(json.encode(t))
      assert.same(t, back)
      assert.equal('{"a\\"b":1,"c/d":2}', json.encode({ ['a"b'] = 1, ["c/d"] = 2 }))
    end)

    it("names the key type of a declared object with other keys", function()
      assert.has_error(function() json.encode(json.object({ [1] = 1 })) end,
        "JSON object keys must be strings, got number")
    end)

    it("does not escape forward slashes, so URLs read naturally", function()
      assert.equal('"http://nc.example/movies/v1/movies/1"',
        json.encode("http://nc.example/movies/v1/movies/1"))
    end)

    it("round-trips backslashes next to slashes", function()
      for _, s in ipairs({ "\\/", "\\\\/", "a\\", "/\\", "\\\\\\/x/" }) do
        assert.equal(s, json.decode(json.encode({ s = s })).s)
      end
    end)

    it("round-trips every ASCII character", function()
      local chars = {}
      for b = 0, 127 do
        chars[#chars + 1] = string.char(b)
      end
      local s = table.concat(chars) .. "é😀"
      assert.equal(s, json.decode(json.encode({ s = s })).s)
    end)

    it("writes integers exactly, integral floats without a fraction", function()
      assert.equal("9007199254740993", json.encode(9007199254740993))
      assert.equal("42", json.encode(42.0))
      assert.equal("-7", json.encode(-7))
      assert.equal("0.1", json.encode(0.1))
      assert.equal(1 / 3, json.decode(json.encode({ x = 1 / 3 })).x)
    end)

    it("raises on values JSON cannot hold (bugs, not input)", function()
      assert.has_error(function() json.encode(0 / 0) end)
      assert.has_error(function() json.encode(math.huge) end)
      assert.has_error(function() json.encode({ 1, x = 2 }) end)
      assert.has_error(function() json.encode({ [1] = 1, [3] = 3 }) end)
      assert.has_error(function() json.encode(print) end)
      local cycle = {}
      cycle.self = cycle
      assert.has_error(function() json.encode(cycle) end)
    end)

    it("encodes an OMA error with no variables as an empty array", function()
      local text = json.encode(errors.body(errors.new("SVC1012")))
      assert.matches('"variables":%[%]', text)
    end)
  end)
  describe("duplicate_key", function()
    it("finds the first key repeated within one object, in text order", function()
      assert.is_nil(json.duplicate_key('{"a":1,"b":2}'))
      assert.equal("a", json.duplicate_key('{"a":1,"a":2}'))
      assert.equal("k", json.duplicate_key('{"x":[1,{"k":1,"k":2}],"x":0}'))
      assert.equal("ab", json.duplicate_key('{"a\\u0062":1,"ab":2}'))
      assert.equal("s", json.duplicate_key('{"s":"a:b","t":"[{\\"","s" :1}'))
    end)

    it("does not count keys of different objects, strings or array items", function()
      assert.is_nil(json.duplicate_key('{"a":{"a":1},"b":[{"a":1},{"a":2}]}'))
      assert.is_nil(json.duplicate_key('[{"a":1},{"a":1}]'))
      assert.is_nil(json.duplicate_key('{"a":"\\"a\\":1","b":["a","a"]}'))
      assert.is_nil(json.duplicate_key('\239\187\191{"a":1,"b":2,}'))
    end)
  end)

  describe("trailing commas (OMA NC Appendix D examples)", function()
    it("accepts a comma before a closing brace or bracket", function()
      local v = assert(json.decode('{"notificationChannel": {\n "channelData": {\n  "maxNotifications": "1",\n },\n "list": [1, 2, ],\n}}'))
      assert.equal("1", v.notificationChannel.channelData.maxNotifications)
      assert.same({ 1, 2 }, v.notificationChannel.list)
    end)

    it("leaves commas inside strings alone", function()
      assert.equal('{"a":",}","b":"\\",]"}',
        json.without_trailing_commas('{"a":",}","b":"\\",]"}'))
      local v = assert(json.decode('{"a": ",}", "b": "x\\"",}'))
      assert.equal(",}", v.a)
      assert.equal('x"', v.b)
    end)

    it("still refuses other broken JSON with the original error", function()
      local v, err = json.decode('{"a": 1,, }')
      assert.is_nil(v)
      assert.equal("SVC0001", err.id)
      assert.is_nil((json.decode('{"a": 1')))
      assert.is_nil((json.decode('[,]')))
    end)
  end)
end)
