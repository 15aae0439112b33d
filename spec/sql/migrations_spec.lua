-- The sql/ migrations: the schema applies, and the seed is data users see,
-- so it is checked for shape here (its facts were checked by hand).
local fake_core = require("support.fake_core")
local timestamp = require("codec.timestamp")
local validate = require("movies.validate")

describe("sql migrations", function()
  local core
  before_each(function()
    core = fake_core.new()
  end)
  after_each(function()
    core.db.close()
  end)

  local function all()
    return assert(core.db.query("SELECT * FROM movies ORDER BY movie_id"))
  end

  it("seeds at least 50 movies with ids 1..n", function()
    local rows = all()
    assert.is_true(#rows >= 50)
    for i, row in ipairs(rows) do
      assert.equal(i, row.movie_id)
    end
  end)

  it("seeds movies the API itself would accept", function()
    local titles = {}
    for _, row in ipairs(all()) do
      local values, err = validate.document({ movie = {
        title = row.title, premiereDate = row.premiere_date,
        director = row.director, genre = row.genre,
      } }, "replace", row.movie_id)
      if not values then
        error(row.title .. ": invalid " .. err.variables[1])
      end
      assert.is_nil(titles[row.title], "duplicate title " .. row.title)
      titles[row.title] = true
      assert.is_string(row.director)
      assert.is_string(row.genre)
      assert.equal("2025-01-01T00:00:00.000Z", row.last_modified)
      assert.is_truthy(timestamp.parse_date(row.premiere_date))
      assert.is_true(row.premiere_date >= "1888-01-01" and row.premiere_date < "2025-01-01",
        row.title .. " premiere " .. row.premiere_date)
    end
  end)

  it("continues ids after the seed", function()
    local n = #all()
    local _, id = core.db.exec("INSERT INTO movies (title, premiere_date, last_modified)"
      .. " VALUES (?, ?, ?)", "New", "2026-01-01", "2026-01-01T00:00:00.000Z")
    assert.equal(n + 1, id)
  end)

  it("applies the schema alone to an empty table", function()
    local empty = fake_core.new({ seed = false })
    assert.same({}, empty.db.query("SELECT * FROM movies"))
    empty.db.close()
  end)
end)
