local fixture = require("movies.subscriptions.fixture")
local store = require("movies.subscriptions.store")

local T0 = fixture.T0
local USER, OTHER = fixture.USER, fixture.OTHER

describe("movies.subscriptions.store", function()
  local f, db, ch
  before_each(function()
    f = fixture.new()
    db = f.core.db
    ch = f.channel(USER)
  end)
  after_each(function()
    f.close()
  end)

  local function row(id, over)
    local r = {
      subscription_id = id, user_id = USER, channel_id = ch.channel_id,
      notify_url = "http://n/cb", callback_data = "d", callback_data_json = '"d"',
      callback_data_xml = "d", notification_format = "json",
      resource_path = "/movies/v1/u/subscriptions/" .. id, all_movies = 1,
      client_correlator = nil, duration = 60, expires_at = T0 + 60, created_at = T0,
    }
    for k, v in pairs(over or {}) do
      r[k] = v
    end
    return r
  end

  local function insert(id, over, ids)
    local r = row(id, over)
    assert.is_true(store.insert(db, r, ids))
    return r
  end

  it("stores every column and one filter row per movie", function()
    insert("s1", { all_movies = 0, client_correlator = "c" }, { 3, 1 })
    local got = store.get(db, USER, "s1")
    for k, v in pairs(row("s1", { all_movies = 0, client_correlator = "c" })) do
      assert.equal(v, got[k], k)
    end
    assert.equal(ch.expires_at, got.channel_expires_at)
    assert.same({ 1, 3 }, store.filter(db, "s1"))
    assert.equal(2, f.count("movie_subscription_filter"))
    -- The fan-out's copy (sql/006_movie_fanout.sql): one row per movie.
    assert.same({ { movie_id = 1 }, { movie_id = 3 } },
      f.rows("SELECT movie_id FROM movie_fanout WHERE subscription_id = 's1' ORDER BY movie_id"))
  end)

  it("keeps movie_fanout with the subscriptions: movie 0 for an unfiltered one", function()
    insert("s1")
    insert("s2", { all_movies = 0 }, { 2 })
    assert.same({ { movie_id = 0, subscription_id = "s1" }, { movie_id = 2, subscription_id = "s2" } },
      f.rows("SELECT movie_id, subscription_id FROM movie_fanout ORDER BY movie_id"))
    assert.is_true(store.delete(db, "s1"))
    assert.is_true(store.delete(db, "s2"))
    assert.equal(0, f.count("movie_fanout"))
  end)

  it("stores no filter rows for an unfiltered subscription", function()
    insert("s1")
    insert("s2", nil, {})
    assert.equal(0, f.count("movie_subscription_filter"))
    assert.same({}, store.filter(db, "s1"))
  end)

  it("finds a subscription only under its own user", function()
    insert("s1")
    assert.is_false(store.get(db, OTHER, "s1"))
    assert.is_false(store.get(db, USER, "nope"))
  end)

  it("finds by clientCorrelator per user", function()
    insert("s1", { client_correlator = "c" })
    assert.equal("s1", store.by_correlator(db, USER, "c").subscription_id)
    assert.is_false(store.by_correlator(db, OTHER, "c"))
    assert.is_false(store.by_correlator(db, USER, "d"))
  end)

  it("keeps one clientCorrelator per user", function()
    insert("s1", { client_correlator = "c" })
    local ok, err, detail = store.insert(db, row("s2", { client_correlator = "c" }))
    assert.is_nil(ok)
    assert.equal("SVC2001", err.id)
    assert.truthy(detail:find("UNIQUE", 1, true), detail)
    local other = f.channel(OTHER)
    assert.is_true(store.insert(db, row("s3", { user_id = OTHER, channel_id = other.channel_id,
      client_correlator = "c" })))
  end)

  it("refuses a subscription without a channel (foreign key)", function()
    local ok, err = store.insert(db, row("s1", { channel_id = "gone" }))
    assert.is_nil(ok)
    assert.equal("SVC2001", err.id)
  end)

  it("lists live subscriptions of a user in creation order", function()
    insert("b")
    insert("a", { expires_at = T0 + 10 })
    insert("c", { expires_at = T0 + 1000 })
    local other = f.channel(OTHER)
    insert("o", { user_id = OTHER, channel_id = other.channel_id })
    local function ids(rows)
      local out = {}
      for i, r in ipairs(rows) do
        out[i] = r.subscription_id
      end
      return out
    end
    assert.same({ "b", "a", "c" }, ids(store.list(db, USER, T0)))
    assert.same({ "b", "c" }, ids(store.list(db, USER, T0 + 10)))
    assert.same({ "c" }, ids(store.list(db, USER, T0 + 60)))
    assert.same({ "o" }, ids(store.list(db, OTHER, T0)))
  end)

  it("lists no subscription whose channel is past its end", function()
    local short = f.channel(USER, 5)
    insert("s1", { channel_id = short.channel_id })
    insert("s2")
    assert.equal(2, #store.list(db, USER, T0 + 4))
    local rows = store.list(db, USER, T0 + 5)
    assert.equal(1, #rows)
    assert.equal("s2", rows[1].subscription_id)
  end)

  it("counts the live subscriptions of a user: those it lists", function()
    local short = f.channel(USER, 5)
    assert.equal(0, store.count_live(db, USER, T0))
    insert("a", { expires_at = T0 + 10 })
    insert("b", { channel_id = short.channel_id })
    insert("c")
    local other = f.channel(OTHER)
    insert("o", { user_id = OTHER, channel_id = other.channel_id })
    assert.equal(3, store.count_live(db, USER, T0))
    assert.equal(1, store.count_live(db, OTHER, T0))
    -- b's channel ends at T0 + 5, a itself at T0 + 10, c at T0 + 60; the
    -- rows are all still there.
    for _, case in ipairs({ { 5, 2 }, { 10, 1 }, { 60, 0 } }) do
      local t = T0 + case[1]
      assert.equal(case[2], store.count_live(db, USER, t), case[1])
      assert.equal(#store.list(db, USER, t), store.count_live(db, USER, t))
    end
    assert.equal(4, f.count("movie_subscriptions"))
  end)

  it("gathers the filters of a user's subscriptions in one query", function()
    insert("s1", { all_movies = 0 }, { 5, 2 })
    insert("s2")
    insert("s3", { all_movies = 0 }, { 7 })
    local other = f.channel(OTHER)
    insert("o", { user_id = OTHER, channel_id = other.channel_id, all_movies = 0 }, { 1 })
    local n = #db.statements
    assert.same({ s1 = { 2, 5 }, s3 = { 7 } }, store.filters_of_user(db, USER))
    assert.equal(n + 1, #db.statements)
  end)

  it("tells which movie ids name no movie", function()
    assert.same({}, store.missing_movies(db, { 1, 2, 3 }))
    assert.same({ 999998, 999999 }, store.missing_movies(db, { 999999, 1, 999998 }))
    assert.same({}, store.missing_movies(db, {}))
  end)

  it("deletes a subscription with its filter rows", function()
    insert("s1", { all_movies = 0 }, { 1, 2 })
    insert("s2", { all_movies = 0 }, { 1 })
    assert.is_true(store.delete(db, "s1"))
    assert.is_false(store.delete(db, "s1"))
    assert.is_false(store.get(db, USER, "s1"))
    assert.equal(1, f.count("movie_subscription_filter"))
  end)

  it("finds the expired ones and the next end", function()
    assert.is_false(store.next_expiry(db))
    insert("a", { expires_at = T0 + 30 })
    insert("b", { expires_at = T0 + 10 })
    insert("c", { expires_at = T0 + 90 })
    assert.equal(T0 + 10, store.next_expiry(db))
    assert.same({}, store.expired(db, T0 + 9))
    assert.same({ "b", "a" }, store.expired(db, T0 + 30))
  end)

  it("binds every value and keeps statement texts fixed", function()
    local evil = "'); DROP TABLE movies; --"
    insert(evil, { client_correlator = evil, callback_data = evil, all_movies = 0 }, { 1, 2 })
    insert("x", { all_movies = 0 }, { 1, 2, 3, 4, 5 })
    store.missing_movies(db, { 1 })
    store.missing_movies(db, { 1, 2, 3 })
    assert.equal(evil, store.get(db, USER, evil).callback_data)
    local texts = {}
    for _, sql in ipairs(db.statements) do
      assert.is_nil(sql:find("DROP", 1, true), sql)
      texts[sql] = true
    end
    -- Two inserts with filters of different lengths, two existence
    -- checks: one text each.
    local n = 0
    for sql in pairs(texts) do
      if sql:find("json_each", 1, true) then
        n = n + 1
      end
    end
    assert.equal(2, n)
  end)

  it("reports a storage failure as SVC2001 with the detail", function()
    db.fail_with("disk I/O error")
    for _, call in ipairs({
      function() return store.get(db, USER, "s") end,
      function() return store.list(db, USER, T0) end,
      function() return store.insert(db, row("s")) end,
      function() return store.delete(db, "s") end,
      function() return store.expired(db, T0) end,
      function() return store.next_expiry(db) end,
      function() return store.filter(db, "s") end,
      function() return store.filters_of_user(db, USER) end,
      function() return store.missing_movies(db, { 1 }) end,
      function() return store.by_correlator(db, USER, "c") end,
      function() return store.count_live(db, USER, T0) end,
    }) do
      local v, err, detail = call()
      assert.is_nil(v)
      assert.equal("SVC2001", err.id)
      assert.equal(503, err.status)
      assert.equal("disk I/O error", detail)
    end
    db.fail_with(nil)
  end)
end)
