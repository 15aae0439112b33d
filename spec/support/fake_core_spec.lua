-- The fake must behave like the real core where the scripts depend on it,
-- or the other specs prove nothing.
local fake_core = require("support.fake_core")

describe("support.fake_core", function()
  local core
  before_each(function()
    core = fake_core.new({ seed = false })
  end)
  after_each(function()
    core.db.close()
  end)

  it("binds parameters, quotes included", function()
    local rows = core.db.query("SELECT ? AS a, ? AS b, ? AS c, ? AS d", "it's", 3, nil, true)
    assert.same({ { a = "it's", b = 3, d = 1 } }, rows)
  end)

  it("leaves ? inside SQL strings alone", function()
    assert.same({ { q = "?", v = "x" } }, core.db.query("SELECT '?' AS q, ? AS v", "x"))
  end)

  it("returns changes and the last rowid from exec", function()
    local changes, id = core.db.exec("INSERT INTO movies (title, premiere_date,"
      .. " last_modified) VALUES (?, ?, ?)", "A", "2000-01-01", "2025-01-01T00:00:00.000Z")
    assert.equal(1, changes)
    assert.equal(1, id)
    assert.equal("integer", math.type(id))
  end)

  it("runs INSERT ... RETURNING once and returns its rows, as the real core does", function()
    local sql = "INSERT INTO movies (title, premiere_date, last_modified)"
      .. " SELECT ?, ?, ? UNION ALL SELECT ?, ?, ? RETURNING movie_id, title"
    local rows = core.db.query(sql, "A", "2000-01-01", "2025-01-01T00:00:00.000Z",
      "B", "2000-01-02", "2025-01-01T00:00:00.000Z")
    assert.same({ { movie_id = 1, title = "A" }, { movie_id = 2, title = "B" } }, rows)
    assert.equal(sql, core.db.statements[#core.db.statements])
    assert.same({ { n = 2 } }, core.db.query("SELECT count(*) AS n FROM movies"))
    local none, err = core.db.query(sql, "C", "2000-13-01", "x", "D", "x", "x")
    assert.is_nil(none)
    assert.matches("CHECK constraint failed", err)
  end)

  it("returns nil and a message for a constraint failure", function()
    local r, err = core.db.exec("INSERT INTO movies (title) VALUES (?)", "A")
    assert.is_nil(r)
    assert.matches("constraint failed", err)
  end)

  it("raises for SQL that does not compile and for a bad argument count", function()
    assert.has_error(function() core.db.query("SELEC 1") end)
    assert.has_error(function() core.db.query("SELECT nope FROM movies") end)
    assert.has_error(function() core.db.query("SELECT ?", 1, 2) end)
  end)

  it("commits, rolls back on a raise, and refuses nesting", function()
    core.db.transaction(function()
      core.db.exec("INSERT INTO movies (title, premiere_date, last_modified)"
        .. " VALUES ('A', '2000-01-01', '2025-01-01T00:00:00.000Z')")
    end)
    assert.has_error(function()
      core.db.transaction(function()
        core.db.exec("DELETE FROM movies")
        error("boom")
      end)
    end, "boom")
    assert.equal(1, #core.db.query("SELECT * FROM movies"))
    assert.has_error(function()
      core.db.transaction(function()
        core.db.transaction(function() end)
      end)
    end)
    assert.equal(7, core.db.transaction(function(a) return a + 1 end, 6))
  end)

  it("has a settable clock, a read-only config and checked log levels", function()
    core.set_time(10)
    core.advance(0.5)
    assert.equal(10.5, core.now())
    assert.has_error(function() core.config.public_url = "x" end)
    assert.has_error(function() core.log("loud", "x") end)
    assert.not_equal(core.random_id(), core.random_id())
  end)
end)
