local fake_core = require("support.fake_core")
local json = require("codec.json")
local api = require("movies.api")

local T0 = 1764331200.0 -- 2025-11-28T12:00:00.000Z
local BASE = "http://nc.example:8080/movies/v1/movies"
local SEEDED = 86

local function request(method, path, body, headers, query)
  return {
    method = method,
    path = path,
    query = query or "",
    headers = headers or { ["content-type"] = "application/json" },
    body = body or "",
  }
end

local function decode(res)
  assert.equal("application/json", res.headers["Content-Type"])
  return assert(json.decode(res.body))
end

-- Asserts an OMA error response and returns its serviceException.
local function oma(res, status, id)
  assert.equal(status, res.status, res.body)
  local e = decode(res).requestError.serviceException
  assert.equal(id, e.messageId)
  return e
end

describe("movies.api", function()
  local core, ctx, seen
  before_each(function()
    core = fake_core.new({ now = T0 })
    ctx = fake_core.ctx(core)
    seen = {}
    ctx.on_change = function(_, change)
      seen[#seen + 1] = change
      return true
    end
  end)
  after_each(function()
    core.db.close()
  end)

  local function list(query)
    return api.list(ctx, request("GET", "/movies/v1/movies", nil, {}, query))
  end
  local function read(id)
    return api.read(ctx, request("GET", "/movies/v1/movies/" .. id, nil, {}),
      { movieId = tostring(id) })
  end
  local function create(body, headers)
    return api.create(ctx, request("POST", "/movies/v1/movies", body, headers))
  end
  local function replace(id, body, headers)
    return api.replace(ctx, request("PUT", "/movies/v1/movies/" .. id, body, headers),
      { movieId = tostring(id) })
  end
  local function patch(id, body, headers)
    return api.patch(ctx, request("PATCH", "/movies/v1/movies/" .. id, body, headers),
      { movieId = tostring(id) })
  end
  local function delete(id)
    return api.delete(ctx, request("DELETE", "/movies/v1/movies/" .. id, nil, {}),
      { movieId = tostring(id) })
  end
  local function count()
    return #decode(list("limit=1000")).movieList.movie
  end

  describe("GET /movies", function()
    it("lists the movies in movieId order with the collection URL", function()
      local res = list("")
      assert.equal(200, res.status)
      local doc = decode(res).movieList
      assert.equal(BASE, doc.resourceURL)
      assert.equal(SEEDED, #doc.movie)
      for i, m in ipairs(doc.movie) do
        assert.equal(i, m.movieId)
      end
      assert.same({
        movieId = 24, title = "The Godfather", premiereDate = "1972-03-14",
        director = "Francis Ford Coppola", genre = "Crime",
        lastModified = "2025-01-01T00:00:00.000Z", resourceURL = BASE .. "/24",
      }, doc.movie[24])
    end)

    it("pages with limit and offset", function()
      local movies = decode(list("limit=5&offset=10")).movieList.movie
      assert.same({ 11, 12, 13, 14, 15 }, (function()
        local ids = {}
        for i, m in ipairs(movies) do
          ids[i] = m.movieId
        end
        return ids
      end)())
    end)

    it("defaults limit to 100", function()
      for i = 1, 20 do
        create(string.format('{"movie":{"title":"Extra %d","premiereDate":"2000-01-01"}}', i))
      end
      assert.equal(100, #decode(list("")).movieList.movie)
      assert.equal(SEEDED + 20, #decode(list("limit=1000")).movieList.movie)
    end)

    it("keeps movie an array when the page is empty", function()
      local res = list("offset=5000")
      assert.equal(200, res.status)
      assert.matches('"movie":%[%]', res.body)
    end)

    it("keeps movie an array with one item", function()
      assert.matches('"movie":%[{', list("limit=1").body)
    end)

    it("filters by title substring, ignoring case", function()
      local movies = decode(list("title=THE+GODFATHER")).movieList.movie
      assert.equal(1, #movies)
      assert.equal("The Godfather", movies[1].title)
      movies = decode(list("title=lord%20of")).movieList.movie
      assert.equal(2, #movies)
      assert.equal(0, #decode(list("title=%25")).movieList.movie)
      assert.equal(SEEDED, #decode(list("title=")).movieList.movie)
    end)

    it("combines the filter with paging", function()
      local movies = decode(list("title=the&limit=2&offset=1")).movieList.movie
      assert.equal(2, #movies)
      assert.is_true(movies[1].movieId < movies[2].movieId)
    end)

    local bad = {
      { "limit=abc", "limit" }, { "limit=-1", "limit" }, { "limit=0", "limit" },
      { "limit=1001", "limit" }, { "limit=", "limit" }, { "limit=1.5", "limit" },
      { "limit=+5", "limit" }, { "limit=1&limit=2", "limit" },
      { "limit=99999999999999999999", "limit" },
      { "offset=-1", "offset" }, { "offset=x", "offset" }, { "offset=", "offset" },
      { "title=a&title=b", "title" }, { "title=%zz", "title" },
    }
    for _, case in ipairs(bad) do
      it("refuses " .. case[1] .. " naming " .. case[2], function()
        local e = oma(list(case[1]), 400, "SVC0002")
        assert.same({ case[2] }, e.variables)
      end)
    end

    it("accepts the largest limit and ignores unknown parameters", function()
      assert.equal(200, list("limit=1000&offset=0&utm_source=x").status)
    end)

    it("answers 503 SVC2001 when storage fails, logging why", function()
      core.db.fail_with("database is locked")
      oma(list(""), 503, "SVC2001")
      assert.equal(1, #core.logged("error", "database is locked"))
    end)
  end)

  describe("GET /movies/{movieId}", function()
    it("answers the movie with a numeric movieId", function()
      local res = read(24)
      assert.equal(200, res.status)
      assert.matches('"movieId":24[,}]', res.body)
      local m = decode(res).movie
      assert.equal("The Godfather", m.title)
      assert.equal(BASE .. "/24", m.resourceURL)
    end)

    for _, id in ipairs({ "9999", "abc", "007", "0", "-1", "1.0" }) do
      it("answers 404 SVC3000 for " .. id, function()
        local e = oma(read(id), 404, "SVC3000")
        assert.same({ "/movies/v1/movies/" .. id }, e.variables)
      end)
    end
  end)

  describe("POST /movies", function()
    local UP = '{"movie":{"title":"Up","premiereDate":"2009-05-13",'
      .. '"director":"Pete Docter","genre":"Animation"}}'

    it("creates: 201, Location, the stored movie", function()
      core.set_time(T0 + 0.25)
      local res = create(UP)
      assert.equal(201, res.status)
      local m = decode(res).movie
      assert.equal(SEEDED + 1, m.movieId)
      assert.equal(BASE .. "/" .. math.tointeger(m.movieId), res.headers.Location)
      assert.equal(res.headers.Location, m.resourceURL)
      assert.equal("2025-11-28T12:00:00.250Z", m.lastModified)
      assert.same(decode(res), decode(read(math.tointeger(m.movieId))))
      assert.equal("MovieCreated", seen[1].event)
    end)

    it("leaves out a director and genre it was not given", function()
      local m = decode(create('{"movie":{"title":"A","premiereDate":"2000-01-01"}}')).movie
      assert.is_nil(m.director)
      assert.is_nil(m.genre)
    end)

    it("accepts JSON with parameters and any case", function()
      assert.equal(201, create(UP, { ["content-type"] = "application/json; charset=utf-8" }).status)
      assert.equal(201, create(UP, { ["content-type"] = "Application/JSON" }).status)
    end)

    for _, ct in ipairs({ "text/plain", "application/xml", "application/jsonx", "" }) do
      it("answers 415 for Content-Type '" .. ct .. "'", function()
        local e = oma(create(UP, { ["content-type"] = ct }), 415, "SVC3002")
        assert.same({ ct, "application/json" }, e.variables)
        assert.equal(SEEDED, count())
      end)
    end

    it("answers 415 without Content-Type", function()
      local e = oma(create(UP, {}), 415, "SVC3002")
      assert.same({ "(none)", "application/json" }, e.variables)
    end)

    it("answers 400 SVC0002 naming movie, with the parser's position, for malformed JSON", function()
      local e = oma(create('{"movie":'), 400, "SVC0002")
      assert.matches("^movie %(malformed JSON: .* at character %d+%)$", e.variables[1])
      oma(create("{'movie':1}"), 400, "SVC0002")
    end)

    for _, body in ipairs({ "", "   ", "[]", '"movie"', "{}", '{"movie":[1]}' }) do
      it("answers 400 SVC0002 naming movie for the body '" .. body .. "'", function()
        local e = oma(create(body), 400, "SVC0002")
        assert.same({ "movie" }, e.variables)
      end)
    end

    local invalid = {
      { '{"movie":{"premiereDate":"2000-01-01"}}', "title" },
      { '{"movie":{"title":"  ","premiereDate":"2000-01-01"}}', "title" },
      { '{"movie":{"title":5,"premiereDate":"2000-01-01"}}', "title" },
      { '{"movie":{"title":"A"}}', "premiereDate" },
      { '{"movie":{"title":"A","premiereDate":"2023-02-30"}}', "premiereDate" },
      { '{"movie":{"title":"A","premiereDate":"2000-01-01","rating":5}}', "rating" },
      { '{"movie":{"title":"A","premiereDate":"2000-01-01","movieId":5}}', "movieId" },
      { '{"movie":{"title":"A","premiereDate":"2000-01-01"},"x":1}', "x" },
    }
    for _, case in ipairs(invalid) do
      it("answers 400 SVC0002 naming " .. case[2] .. " for " .. case[1], function()
        local e = oma(create(case[1]), 400, "SVC0002")
        assert.same({ case[2] }, e.variables)
        assert.equal("Invalid input value for message part %1", e.text)
        assert.equal(SEEDED, count())
        assert.equal(0, #seen)
      end)
    end
  end)

  describe("PUT /movies/{movieId}", function()
    local GODFATHER = '{"movie":{"title":"The Godfather","premiereDate":"1972-03-24",'
      .. '"director":"Francis Ford Coppola","genre":"Crime"}}'

    it("replaces every field and stamps lastModified", function()
      core.set_time(T0 + 5)
      local res = replace(24, GODFATHER)
      assert.equal(200, res.status)
      local m = decode(res).movie
      assert.equal("1972-03-24", m.premiereDate)
      assert.equal("2025-11-28T12:00:05.000Z", m.lastModified)
      assert.same(decode(res), decode(read(24)))
      assert.same({ "premiereDate" }, seen[1].changed)
      assert.same({ premiereDate = "1972-03-14" }, seen[1].previous)
    end)

    it("clears director and genre given as null", function()
      local m = decode(replace(24, '{"movie":{"title":"T","premiereDate":"1972-03-14",'
        .. '"director":null,"genre":null}}')).movie
      assert.is_nil(m.director)
      assert.is_nil(m.genre)
      assert.is_nil(decode(read(24)).movie.genre)
    end)

    it("needs every writable field", function()
      local e = oma(replace(24, '{"movie":{"title":"T","premiereDate":"1972-03-14"}}'),
        400, "SVC0002")
      assert.same({ "director" }, e.variables)
      assert.equal("Francis Ford Coppola", decode(read(24)).movie.director)
    end)

    it("is a no-op when nothing changes: same lastModified, no change", function()
      core.advance(60)
      local before = decode(read(24)).movie
      local res = replace(24, json.encode({ movie = before }))
      assert.equal(200, res.status)
      assert.same(before, decode(res).movie)
      assert.equal("2025-01-01T00:00:00.000Z", decode(read(24)).movie.lastModified)
      assert.equal(0, #seen)
    end)

    it("accepts a read document sent back, refuses another movieId", function()
      local doc = decode(read(24))
      doc.movie.title = "Il padrino"
      assert.equal(200, replace(24, json.encode(doc)).status)
      doc.movie.movieId = 25
      local e = oma(replace(24, json.encode(doc)), 400, "SVC0002")
      assert.same({ "movieId" }, e.variables)
      doc.movie.movieId = "24"
      assert.equal(200, replace(24, json.encode(doc)).status)
    end)

    it("answers 404 for an unknown movie, creating nothing", function()
      oma(replace(9999, GODFATHER), 404, "SVC3000")
      assert.equal(SEEDED, count())
    end)

    it("answers 404 for a malformed id before looking at the body", function()
      oma(replace("abc", "not json", {}), 404, "SVC3000")
    end)

    it("answers 415 and 400 SVC0002 like POST", function()
      oma(replace(24, GODFATHER, { ["content-type"] = "text/plain" }), 415, "SVC3002")
      oma(replace(24, "{"), 400, "SVC0002")
    end)

    it("moves lastModified on each change even when the clock stands still", function()
      local a = decode(replace(24, GODFATHER)).movie.lastModified
      local b = decode(replace(24, (GODFATHER:gsub("Crime", "Drama")))).movie.lastModified
      assert.equal("2025-11-28T12:00:00.000Z", a)
      assert.equal("2025-11-28T12:00:00.001Z", b)
    end)
  end)

  describe("PATCH /movies/{movieId}", function()
    it("changes only the fields given", function()
      core.set_time(T0 + 1)
      local res = patch(24, '{"movie":{"premiereDate":"2026-05-01"}}')
      assert.equal(200, res.status)
      local m = decode(res).movie
      assert.equal("2026-05-01", m.premiereDate)
      assert.equal("The Godfather", m.title)
      assert.equal("Crime", m.genre)
      assert.equal("2025-11-28T12:00:01.000Z", m.lastModified)
      assert.same({ "premiereDate" }, seen[1].changed)
    end)

    it("clears a field given as null", function()
      local m = decode(patch(24, '{"movie":{"genre":null}}')).movie
      assert.is_nil(m.genre)
      assert.equal("Francis Ford Coppola", m.director)
      assert.same({ "genre" }, seen[1].changed)
    end)

    it("is a no-op for an empty movie or the same values", function()
      assert.equal(200, patch(24, '{"movie":{}}').status)
      assert.equal(200, patch(24, '{"movie":{"title":"The Godfather"}}').status)
      assert.equal("2025-01-01T00:00:00.000Z", decode(read(24)).movie.lastModified)
      assert.equal(0, #seen)
    end)

    it("validates what it is given", function()
      local e = oma(patch(24, '{"movie":{"premiereDate":"2023-02-29"}}'), 400, "SVC0002")
      assert.same({ "premiereDate" }, e.variables)
      e = oma(patch(24, '{"movie":{"title":null}}'), 400, "SVC0002")
      assert.same({ "title" }, e.variables)
    end)

    it("answers 404 for an unknown movie and 415 for a wrong type", function()
      oma(patch(9999, '{"movie":{}}'), 404, "SVC3000")
      oma(patch(24, '{"movie":{}}', { ["content-type"] = "application/xml" }), 415, "SVC3002")
    end)
  end)

  describe("DELETE /movies/{movieId}", function()
    it("deletes: 204 with no body and no Content-Type", function()
      local res = delete(24)
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.is_nil(res.headers["Content-Type"])
      oma(read(24), 404, "SVC3000")
      assert.equal("MovieDeleted", seen[1].event)
      assert.equal(SEEDED - 1, count())
    end)

    it("answers 404 the second time and for malformed ids", function()
      delete(24)
      oma(delete(24), 404, "SVC3000")
      oma(delete("x"), 404, "SVC3000")
      assert.equal(1, #seen)
    end)
  end)

  describe("routes", function()
    it("binds the table of API.md 3", function()
      local got = {}
      for _, r in ipairs(api.routes(ctx)) do
        got[#got + 1] = r[1] .. " " .. r[2]
        assert.is_function(r[3])
      end
      assert.same({
        "GET /movies/v1/movies", "POST /movies/v1/movies",
        "GET /movies/v1/movies/{movieId}", "PUT /movies/v1/movies/{movieId}",
        "PATCH /movies/v1/movies/{movieId}", "DELETE /movies/v1/movies/{movieId}",
      }, got)
    end)
  end)
end)
