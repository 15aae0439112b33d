local json = require("codec.json")
local validate = require("movies.validate")

local function doc(text)
  return assert(json.decode(text))
end

-- The message part named by the SVC0002 that `text` gets in `mode`.
local function refused(text, mode, path_id)
  local values, err = validate.document(doc(text), mode, path_id)
  assert.is_nil(values, "expected a refusal of " .. text)
  assert.equal("SVC0002", err.id)
  assert.equal(400, err.status)
  return err.variables[1]
end

local FULL = [[{"movie":{"title":"Up","premiereDate":"2009-05-13",
  "director":"Pete Docter","genre":"Animation"}}]]

describe("movies.validate", function()
  describe("movie_id", function()
    it("accepts canonical decimal ids", function()
      assert.equal(1, validate.movie_id("1"))
      assert.equal(42, validate.movie_id("42"))
      assert.equal(9007199254740992, validate.movie_id("9007199254740992"))
      assert.equal("integer", math.type(validate.movie_id("7")))
    end)

    for _, bad in ipairs({ "0", "007", "+7", "-7", "7.0", " 7", "7 ", "abc", "",
      "1e3", "0x10", "9007199254740993", "99999999999999999999" }) do
      it("refuses " .. bad, function()
        assert.is_nil(validate.movie_id(bad))
      end)
    end

    it("refuses non-strings", function()
      assert.is_nil(validate.movie_id(nil))
      assert.is_nil(validate.movie_id(7))
    end)
  end)

  describe("create", function()
    it("maps API names to columns", function()
      local values, present = validate.document(doc(FULL), "create")
      assert.same({ title = "Up", premiere_date = "2009-05-13",
        director = "Pete Docter", genre = "Animation" }, values)
      assert.same({ title = true, premiere_date = true, director = true,
        genre = true }, present)
    end)

    it("needs only title and premiereDate", function()
      local values = validate.document(
        doc('{"movie":{"title":"Up","premiereDate":"2009-05-13"}}'), "create")
      assert.same({ title = "Up", premiere_date = "2009-05-13" }, values)
    end)

    it("takes null director and genre as none", function()
      local values, present = validate.document(doc(
        '{"movie":{"title":"Up","premiereDate":"2009-05-13","director":null,"genre":null}}'),
        "create")
      assert.same({ title = "Up", premiere_date = "2009-05-13" }, values)
      assert.is_true(present.director)
    end)

    it("names a missing required field", function()
      assert.equal("title", refused('{"movie":{"premiereDate":"2009-05-13"}}', "create"))
      assert.equal("premiereDate", refused('{"movie":{"title":"Up"}}', "create"))
    end)

    it("refuses a movieId: the server picks it", function()
      assert.equal("movieId", refused(
        '{"movie":{"movieId":5,"title":"Up","premiereDate":"2009-05-13"}}', "create"))
    end)

    it("ignores lastModified and resourceURL strings", function()
      local values = validate.document(doc([[{"movie":{"title":"Up",
        "premiereDate":"2009-05-13","lastModified":"x","resourceURL":"y"}}]]), "create")
      assert.same({ title = "Up", premiere_date = "2009-05-13" }, values)
    end)
  end)

  describe("the document root", function()
    it("needs the movie root", function()
      assert.equal("movie", refused('{}', "create"))
      assert.equal("movie", refused('{"film":{}}', "patch", 1))
      assert.equal("movie", refused('{"movie":"Up"}', "create"))
      assert.equal("movie", refused('{"movie":[1,2]}', "create"))
      assert.equal("movie", refused('{"movie":null}', "create"))
      assert.equal("movie", refused('["movie"]', "create"))
    end)

    it("names an extra root element", function()
      assert.equal("film", refused('{"movie":{"title":"Up"},"film":1}', "patch", 1))
    end)
  end)

  describe("fields", function()
    it("names the first unknown field in name order", function()
      assert.equal("bar", refused(
        '{"movie":{"title":"Up","premiereDate":"2009-05-13","foo":1,"bar":2}}', "create"))
    end)

    local wrong = {
      { "title", '""' }, { "title", '"   "' }, { "title", '"\\t"' },
      { "title", '"a\\nb"' }, { "title", "12" }, { "title", "true" },
      { "title", "null" }, { "title", '["Up"]' }, { "title", '{"x":1}' },
      { "title", '"' .. string.rep("a", 301) .. '"' },
      { "premiereDate", '"2023-02-30"' }, { "premiereDate", '"2023-2-3"' },
      { "premiereDate", '"13/05/2009"' }, { "premiereDate", "20090513" },
      { "premiereDate", "null" }, { "premiereDate", '""' },
      { "premiereDate", '"2009-05-13T00:00:00Z"' },
      { "director", '""' }, { "director", " 7" }, { "director", '" "' },
      { "director", "false" },
      { "genre", '""' }, { "genre", "[]" },
      { "genre", '"' .. string.rep("g", 101) .. '"' },
    }
    for _, case in ipairs(wrong) do
      local name, value = case[1], case[2]
      it("refuses " .. name .. " = " .. value:sub(1, 20), function()
        local text = string.format('{"movie":{"%s":%s}}', name, value)
        assert.equal(name, refused(text, "patch", 1))
      end)
    end

    it("refuses bytes that are not UTF-8", function()
      local d = { movie = { title = "Am\xe9lie" } }
      local values, err = validate.document(d, "patch", 1)
      assert.is_nil(values)
      assert.same({ "title" }, err.variables)
    end)

    it("accepts UTF-8 text and counts characters, not bytes", function()
      local title = string.rep("é", 300)
      local values = validate.document({ movie = { title = title } }, "patch", 1)
      assert.equal(title, values.title)
    end)

    it("keeps the text as sent", function()
      local values = validate.document(doc('{"movie":{"title":" Up "}}'), "patch", 1)
      assert.equal(" Up ", values.title)
    end)

    it("checks fields in a fixed order", function()
      assert.equal("title", refused(
        '{"movie":{"genre":1,"director":1,"premiereDate":1,"title":1}}', "patch", 1))
      assert.equal("premiereDate", refused(
        '{"movie":{"genre":1,"premiereDate":1,"title":"Up"}}', "patch", 1))
    end)
  end)

  describe("replace", function()
    it("needs every writable field", function()
      assert.equal("director", refused(
        '{"movie":{"title":"Up","premiereDate":"2009-05-13","genre":"Animation"}}',
        "replace", 1))
      assert.equal("genre", refused(
        '{"movie":{"title":"Up","premiereDate":"2009-05-13","director":"Pete Docter"}}',
        "replace", 1))
    end)

    it("accepts null director and genre", function()
      local values, present = validate.document(doc(
        '{"movie":{"title":"Up","premiereDate":"2009-05-13","director":null,"genre":null}}'),
        "replace", 1)
      assert.same({ title = "Up", premiere_date = "2009-05-13" }, values)
      assert.same({ title = true, premiere_date = true, director = true, genre = true },
        present)
    end)

    it("accepts the path's movieId, as a number or a numeric string", function()
      for _, id in ipairs({ "7", '"7"', "7.0" }) do
        local text = FULL:gsub('{"title"', '{"movieId":' .. id .. ',"title"')
        assert.is_table(validate.document(doc(text), "replace", 7), id)
      end
    end)

    it("refuses another movieId", function()
      for _, id in ipairs({ "8", '"8"', "7.5", '"07"', "null", "true", "-7" }) do
        local text = FULL:gsub('{"title"', '{"movieId":' .. id .. ',"title"')
        assert.equal("movieId", refused(text, "replace", 7), id)
      end
    end)

    it("refuses read-only fields of the wrong type", function()
      assert.equal("lastModified", refused(
        '{"movie":{"title":"Up","lastModified":5}}', "patch", 1))
      assert.equal("resourceURL", refused(
        '{"movie":{"resourceURL":{}}}', "patch", 1))
    end)
  end)

  describe("patch", function()
    it("returns only the fields given", function()
      local values, present = validate.document(
        doc('{"movie":{"premiereDate":"2026-05-01"}}'), "patch", 1)
      assert.same({ premiere_date = "2026-05-01" }, values)
      assert.same({ premiere_date = true }, present)
    end)

    it("accepts an empty movie", function()
      local values, present = validate.document(doc('{"movie":{}}'), "patch", 1)
      assert.same({}, values)
      assert.same({}, present)
    end)

    it("marks a null as present with no value, to clear the field", function()
      local values, present = validate.document(doc('{"movie":{"genre":null}}'), "patch", 1)
      assert.same({}, values)
      assert.same({ genre = true }, present)
    end)

    it("refuses null for title and premiereDate", function()
      assert.equal("title", refused('{"movie":{"title":null}}', "patch", 1))
    end)
  end)

  it("raises for an unknown mode (a bug)", function()
    assert.has_error(function() validate.document({ movie = {} }, "upsert") end)
  end)
end)
