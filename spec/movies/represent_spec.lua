local json = require("codec.json")
local represent = require("movies.represent")

local ROW = { movie_id = 7, title = "Up", premiere_date = "2009-05-13",
  director = "Pete Docter", genre = "Animation",
  last_modified = "2025-11-28T12:00:00.000Z" }

describe("movies.represent", function()
  it("maps a row to the API movie", function()
    assert.same({ movie = {
      movieId = 7, title = "Up", premiereDate = "2009-05-13",
      director = "Pete Docter", genre = "Animation",
      lastModified = "2025-11-28T12:00:00.000Z",
      resourceURL = "http://h/movies/v1/movies/7",
    } }, represent.document(ROW, "http://h"))
  end)

  it("encodes movieId as a JSON number", function()
    assert.matches('"movieId":7,', json.encode(represent.document(ROW, "http://h")))
  end)

  it("leaves out NULL fields", function()
    local m = represent.movie({ movie_id = 1, title = "A", premiere_date = "2000-01-01",
      last_modified = "2025-11-28T12:00:00.000Z" }, "http://h")
    assert.is_nil(m.director)
    assert.is_nil(m.genre)
  end)

  it("builds a list whose movie is always an array", function()
    assert.equal('{"movieList":{"movie":[],"resourceURL":"http://h/movies/v1/movies"}}',
      json.encode(represent.list({}, "http://h")))
    local doc = json.decode(json.encode(represent.list({ ROW }, "http://h")))
    assert.equal(1, #doc.movieList.movie)
  end)
end)
