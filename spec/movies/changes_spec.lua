local fake_core = require("support.fake_core")
local json = require("codec.json")
local changes = require("movies.changes")
local store = require("movies.store")

local T0 = 1764331200.0 -- 2025-11-28T12:00:00.000Z

describe("movies.changes", function()
  local core, ctx, seen
  before_each(function()
    core = fake_core.new({ seed = false, now = T0 })
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

  -- A copy of `row` with `fields` applied; a field set to false is removed
  -- (NULL), as a table cannot hold nil.
  local function with(row, fields)
    local t = {}
    for k, v in pairs(row) do
      t[k] = v
    end
    for k, v in pairs(fields or {}) do
      if v == false then
        t[k] = nil
      else
        t[k] = v
      end
    end
    return t
  end

  local UP = { title = "Up", premiere_date = "2009-05-13",
    director = "Pete Docter", genre = "Animation" }

  local function create(fields)
    return assert(changes.apply(ctx, nil, with(UP, fields)))
  end

  describe("create", function()
    it("stores the row, stamps it and reports MovieCreated", function()
      core.set_time(T0 + 0.123)
      local row, change = create()
      assert.equal(1, row.movie_id)
      assert.equal("2025-11-28T12:00:00.123Z", row.last_modified)
      assert.same(row, store.get(core.db, 1))
      assert.equal("MovieCreated", change.event)
      assert.equal(1, change.movie_id)
      assert.same({ "title", "premiereDate", "director", "genre" }, change.changed)
      assert.same({}, change.previous)
      assert.is_nil(change.old)
      assert.same(row, change.new)
      assert.equal(1, #seen)
      assert.same({ "movie 1 MovieCreated: title, premiereDate, director, genre" },
        core.logged("info"))
    end)

    it("lists only the fields given", function()
      local _, change = create({ director = false, genre = false })
      assert.same({ "title", "premiereDate" }, change.changed)
    end)

    it("ignores a last_modified in the new row", function()
      local row = create({ last_modified = "1999-01-01T00:00:00.000Z" })
      assert.equal("2025-11-28T12:00:00.000Z", row.last_modified)
    end)
  end)

  describe("update", function()
    it("reports the changed fields and their previous values", function()
      local old = create()
      core.advance(1)
      local row, change = changes.apply(ctx, old,
        with(old, { premiere_date = "2026-05-01", genre = "Drama" }))
      assert.equal("MovieUpdated", change.event)
      assert.same({ "premiereDate", "genre" }, change.changed)
      assert.same({ premiereDate = "2009-05-13", genre = "Animation" }, change.previous)
      assert.same(old, change.old)
      assert.equal("2025-11-28T12:00:01.000Z", row.last_modified)
      assert.same(row, store.get(core.db, old.movie_id))
      assert.equal(2, #seen)
    end)

    it("reports a field that was NULL with json.null as its previous value", function()
      local old = create({ genre = false })
      local _, change = changes.apply(ctx, old, with(old, { genre = "Drama" }))
      assert.same({ "genre" }, change.changed)
      assert.equal(json.null, change.previous.genre)
    end)

    it("reports a field cleared to NULL", function()
      local old = create()
      local _, change = changes.apply(ctx, old, with(old, { director = false }))
      assert.same({ "director" }, change.changed)
      assert.same({ director = "Pete Docter" }, change.previous)
      assert.is_nil(store.get(core.db, old.movie_id).director)
    end)

    it("keeps the stored movie_id whatever the new row says", function()
      local old = create()
      local row = changes.apply(ctx, old, with(old, { movie_id = 999, title = "X" }))
      assert.equal(old.movie_id, row.movie_id)
      assert.equal("X", store.get(core.db, old.movie_id).title)
    end)

    it("moves lastModified strictly forward when the clock has not", function()
      local old = create()
      local a = changes.apply(ctx, old, with(old, { title = "A" }))
      local b = changes.apply(ctx, a, with(a, { title = "B" }))
      assert.equal("2025-11-28T12:00:00.001Z", a.last_modified)
      assert.equal("2025-11-28T12:00:00.002Z", b.last_modified)
    end)

    it("moves lastModified forward when the clock went back", function()
      local old = create()
      core.set_time(T0 - 3600)
      local row = changes.apply(ctx, old, with(old, { title = "A" }))
      assert.equal("2025-11-28T12:00:00.001Z", row.last_modified)
    end)
  end)

  describe("no-op", function()
    it("writes nothing, keeps lastModified and calls no hook", function()
      local old = create()
      local before = #core.db.statements
      core.advance(60)
      local row, change = changes.apply(ctx, old, with(old, {}))
      assert.is_nil(change)
      assert.same(old, row)
      assert.equal(before, #core.db.statements)
      assert.equal(1, #seen)
      assert.same(old, store.get(core.db, old.movie_id))
      assert.equal(1, #core.logged("debug", "nothing changed"))
    end)

    it("ignores differences in last_modified alone", function()
      local old = create()
      local _, change = changes.apply(ctx, old,
        with(old, { last_modified = "2030-01-01T00:00:00.000Z" }))
      assert.is_nil(change)
    end)
  end)

  describe("delete", function()
    it("removes the row and reports MovieDeleted with the old values", function()
      local old = create()
      local row, change = changes.apply(ctx, old, nil)
      assert.same(old, row)
      assert.is_nil(store.get(core.db, old.movie_id))
      assert.equal("MovieDeleted", change.event)
      assert.same({ "title", "premiereDate", "director", "genre" }, change.changed)
      assert.equal("Up", change.previous.title)
      assert.is_nil(change.new)
    end)

    it("fails with 404 when the row is already gone", function()
      local old = create()
      store.delete(core.db, old.movie_id)
      local row, err = changes.apply(ctx, old, nil)
      assert.is_nil(row)
      assert.equal("SVC3000", err.id)
    end)
  end)

  describe("failures", function()
    it("rolls the write back when the hook fails", function()
      local old = create()
      local errors = require("codec.errors")
      ctx.on_change = function()
        return nil, errors.new("SVC2001"), "outbox full"
      end
      local row, err = changes.apply(ctx, old, with(old, { title = "Lost" }))
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      assert.equal("Up", store.get(core.db, old.movie_id).title)
      assert.equal(1, #core.logged("error", "outbox full"))
    end)

    it("rolls back a create whose hook fails", function()
      ctx.on_change = function()
        return nil, require("codec.errors").new("SVC2001")
      end
      assert.is_nil(changes.apply(ctx, nil, { title = "A", premiere_date = "2000-01-01" }))
      assert.equal(0, #store.list(core.db, 10, 0))
    end)

    it("lets a raising hook raise after rolling back (a bug)", function()
      local old = create()
      ctx.on_change = function()
        error("boom")
      end
      assert.has_error(function()
        changes.apply(ctx, old, with(old, { title = "Lost" }))
      end)
      assert.equal("Up", store.get(core.db, old.movie_id).title)
    end)

    it("reports storage failures as SVC2001 and logs the detail", function()
      local old = create()
      core.db.fail_with("disk I/O error")
      local row, err = changes.apply(ctx, old, with(old, { title = "X" }))
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      assert.equal(1, #core.logged("error", "disk I/O error"))
    end)

    it("raises when given neither row (a bug)", function()
      assert.has_error(function() changes.apply(ctx, nil, nil) end)
    end)
  end)

  it("works without a hook", function()
    ctx.on_change = nil
    local row, change = create()
    assert.equal("MovieCreated", change.event)
    assert.equal(1, row.movie_id)
  end)

  describe("next_stamp", function()
    it("is the clock when it is ahead, stored + 1 ms otherwise", function()
      assert.equal("2025-11-28T12:00:00.500Z",
        changes.next_stamp(T0 + 0.5, "2025-11-28T12:00:00.000Z"))
      assert.equal("2025-11-28T12:00:01.000Z",
        changes.next_stamp(T0 + 0.5, "2025-11-28T12:00:00.999Z"))
      assert.equal("2025-11-28T12:00:00.000Z", changes.next_stamp(T0, nil))
      assert.equal("2025-11-28T12:00:00.000Z", changes.next_stamp(T0, "garbage"))
    end)
  end)
end)
