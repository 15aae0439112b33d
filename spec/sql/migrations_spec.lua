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

  describe("005_outbox_templates", function()
    local old
    before_each(function()
      old = fake_core.new({ seed = false, before = "005" })
      -- As the core has it while it migrates.
      assert(old.db.exec("PRAGMA foreign_keys = ON"))
    end)
    after_each(function()
      old.db.close()
    end)

    local function channel(id)
      assert(old.db.exec("INSERT INTO channels (channel_id, user_id, channel_type,"
        .. " max_notifications, callback_id, lifetime, expires_at, created_at)"
        .. " VALUES (?, 'tel:+1', 'WebSockets', 1, ?, 60, 2e9, 1)", id, "cb" .. id))
    end
    local function enqueue(id, body)
      local _, seq = assert(old.db.exec("INSERT INTO outbox (channel_id, root, format, body,"
        .. " created_at) VALUES (?, 'aNotification', 'json', ?, 1.5)", id, body))
      return seq
    end

    it("keeps every queued row as it was, and never reuses a seq", function()
      channel("a")
      channel("b")
      enqueue("a", '{"aNotification":{"n":1}}')
      enqueue("b", '{"aNotification":{"n":2}}')
      enqueue("a", '{"aNotification":{"n":3}}')
      local newest = enqueue("b", "gone")
      -- The newest row was delivered: the next seq must still be above it.
      assert(old.db.exec("DELETE FROM outbox WHERE seq = ?", newest))
      local before = old.db.query("SELECT seq, channel_id, root, format, body, created_at"
        .. " FROM outbox ORDER BY seq")
      old.db.migrate("005_outbox_templates.sql")
      local after = old.db.query("SELECT seq, channel_id, root, format, body, created_at"
        .. " FROM outbox ORDER BY seq")
      assert.same(before, after)
      assert.equal(3, #after)
      assert.same({}, old.db.query("SELECT * FROM outbox WHERE template_id IS NOT NULL"
        .. " OR fill_1 IS NOT NULL OR fill_2 IS NOT NULL"))
      local seq = enqueue("a", "new")
      assert.equal(newest + 1, seq)
      -- The rebuilt table keeps its foreign key, cascade and index.
      assert(old.db.exec("DELETE FROM channels WHERE channel_id = 'a'"))
      assert.equal(1, old.db.query("SELECT count(*) AS n FROM outbox")[1].n)
      assert.is_nil(old.db.exec("INSERT INTO outbox (channel_id, root, format, body,"
        .. " created_at) VALUES ('nochannel', 'r', 'json', '{}', 1)"))
      local indexes = {}
      for _, r in ipairs(old.db.query("SELECT name FROM sqlite_master WHERE type = 'index'"
        .. " AND tbl_name = 'outbox' ORDER BY name")) do
        indexes[#indexes + 1] = r.name
      end
      assert.same({ "outbox_channel", "outbox_template" }, indexes)
      assert.same({}, old.db.query("SELECT name FROM sqlite_master WHERE name = 'outbox_rebuilt'"))
      assert.same({}, old.db.query("PRAGMA foreign_key_check"))
    end)

    it("applies to an outbox that never held a row", function()
      old.db.migrate("005_outbox_templates.sql")
      channel("a")
      assert.equal(1, enqueue("a", "{}"))
    end)
  end)

  describe("006_movie_fanout", function()
    it("copies every existing subscription, wrapped as the fan-out writes it", function()
      local old = fake_core.new({ seed = false, before = "006" })
      assert(old.db.exec("PRAGMA foreign_keys = ON"))
      assert(old.db.exec("INSERT INTO channels (channel_id, user_id, channel_type,"
        .. " max_notifications, callback_id, lifetime, expires_at, created_at)"
        .. " VALUES ('c', 'tel:+1', 'WebSockets', 1, 'cb', 60, 2e9, 1)"))
      local function sub(id, format, json_cb, xml_cb, all)
        assert(old.db.exec("INSERT INTO movie_subscriptions (subscription_id, user_id,"
          .. " channel_id, notify_url, callback_data_json, callback_data_xml,"
          .. " notification_format, resource_path, all_movies, duration, expires_at,"
          .. " created_at) VALUES (?, 'tel:+1', 'c', 'u', ?, ?, ?, ?, ?, 60, 7, 1)",
          id, json_cb, xml_cb, format, "/p/" .. id, all))
      end
      sub("a", "json", '"x"', "x", 1)
      sub("b", "xml", '"y"', "y", 0)
      sub("n", "json", nil, nil, 0)
      assert(old.db.exec("INSERT INTO movie_subscription_filter VALUES (1, 'b'), (2, 'b'),"
        .. " (2, 'n')"))
      old.db.migrate("006_movie_fanout.sql")
      assert.same({
        { movie_id = 0, subscription_id = "a", channel_id = "c", notification_format = "json",
          fill_1 = '"callbackData":"x",', fill_2 = "/p/a", expires_at = 7 },
        { movie_id = 1, subscription_id = "b", channel_id = "c", notification_format = "xml",
          fill_1 = "<callbackData>y</callbackData>", fill_2 = "/p/b", expires_at = 7 },
        { movie_id = 2, subscription_id = "b", channel_id = "c", notification_format = "xml",
          fill_1 = "<callbackData>y</callbackData>", fill_2 = "/p/b", expires_at = 7 },
        { movie_id = 2, subscription_id = "n", channel_id = "c", notification_format = "json",
          fill_1 = "", fill_2 = "/p/n", expires_at = 7 },
      }, old.db.query("SELECT * FROM movie_fanout ORDER BY movie_id, subscription_id"))
      -- And the channel's cascade takes them.
      assert(old.db.exec("DELETE FROM channels WHERE channel_id = 'c'"))
      assert.same({}, old.db.query("SELECT * FROM movie_fanout"))
      old.db.close()
    end)
  end)

  it("applies the schema alone to an empty table", function()
    local empty = fake_core.new({ seed = false })
    assert.same({}, empty.db.query("SELECT * FROM movies"))
    empty.db.close()
  end)
end)
