local fake_core = require("support.fake_core")
local store = require("movies.store")

local STAMP = "2025-11-28T12:00:00.000Z"

local function row(title, date)
  return { title = title, premiere_date = date or "2000-01-01",
    last_modified = STAMP }
end

describe("movies.store", function()
  local core, db
  before_each(function()
    core = fake_core.new({ seed = false })
    db = core.db
  end)
  after_each(function()
    db.close()
  end)

  it("inserts and reads back a row", function()
    local id = store.insert(db, { title = "Up", premiere_date = "2009-05-13",
      director = "Pete Docter", genre = "Animation", last_modified = STAMP })
    assert.equal(1, id)
    assert.same({ movie_id = 1, title = "Up", premiere_date = "2009-05-13",
      director = "Pete Docter", genre = "Animation", last_modified = STAMP },
      store.get(db, id))
  end)

  it("binds every value: SQL in a title is just text", function()
    local title = "'); DROP TABLE movies; --"
    local id = store.insert(db, row(title))
    assert.equal(title, store.get(db, id).title)
    assert.is_true(#db.statements > 0)
    for _, sql in ipairs(db.statements) do
      assert.is_nil(sql:find("DROP", 1, true), "value spliced into " .. sql)
    end
  end)

  it("gives nil and no error for a missing row", function()
    local r, err = store.get(db, 99)
    assert.is_nil(r)
    assert.is_nil(err)
  end)

  it("lists in movie_id order with limit and offset", function()
    for i = 1, 5 do
      store.insert(db, row("M" .. i))
    end
    local rows = store.list(db, 2, 1)
    assert.same({ 2, 3 }, { rows[1].movie_id, rows[2].movie_id })
    assert.equal(0, #store.list(db, 10, 5))
  end)

  it("filters titles by substring ignoring ASCII case", function()
    store.insert(db, row("Star Wars"))
    store.insert(db, row("The Empire Strikes Back"))
    store.insert(db, row("Lone STAR"))
    local rows = store.list(db, 10, 0, "star")
    assert.same({ "Star Wars", "Lone STAR" }, { rows[1].title, rows[2].title })
    assert.equal(2, #rows)
  end)

  it("treats LIKE wildcards in the filter as plain characters", function()
    store.insert(db, row("100% Wolf"))
    store.insert(db, row("1000 Wolves"))
    store.insert(db, row("a_b"))
    store.insert(db, row("axb"))
    local rows = store.list(db, 10, 0, "100%")
    assert.equal(1, #rows)
    assert.equal("100% Wolf", rows[1].title)
    rows = store.list(db, 10, 0, "a_b")
    assert.equal(1, #rows)
    assert.equal("a_b", rows[1].title)
  end)

  it("updates and deletes, telling whether the row was there", function()
    local id = store.insert(db, row("Up"))
    local r = store.get(db, id)
    r.title = "Up!"
    assert.is_true(store.update(db, r))
    assert.equal("Up!", store.get(db, id).title)
    assert.is_true(store.delete(db, id))
    assert.is_false(store.delete(db, id))
    r.movie_id = 999
    assert.is_false(store.update(db, r))
  end)

  it("never reuses the id of a deleted movie", function()
    store.insert(db, row("A"))
    local id = store.insert(db, row("B"))
    store.delete(db, id)
    assert.equal(id + 1, store.insert(db, row("C")))
  end)

  it("reports storage failures as SVC2001 with the SQLite message", function()
    db.fail_with("database is locked")
    for _, call in ipairs({
      function() return store.list(db, 1, 0) end,
      function() return store.get(db, 1) end,
      function() return store.insert(db, row("A")) end,
      function() return store.update(db, { movie_id = 1 }) end,
      function() return store.delete(db, 1) end,
    }) do
      local r, err, detail = call()
      assert.is_nil(r)
      assert.equal("SVC2001", err.id)
      assert.equal(503, err.status)
      assert.equal("database is locked", detail)
    end
  end)

  it("is backed by a schema that refuses what validation refuses", function()
    for _, bad in ipairs({
      { title = "", premiere_date = "2000-01-01", last_modified = STAMP },
      { title = "A", premiere_date = "2023-02-30", last_modified = STAMP },
      { title = "A", premiere_date = "2023-2-3", last_modified = STAMP },
      { title = "A", premiere_date = "2000-01-01", director = "", last_modified = STAMP },
      { title = "A", premiere_date = "2000-01-01", last_modified = "yesterday" },
    }) do
      local id, err, detail = store.insert(db, bad)
      assert.is_nil(id)
      assert.matches("constraint failed", detail)
    end
  end)
end)
