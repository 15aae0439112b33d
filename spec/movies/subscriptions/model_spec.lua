local fixture = require("movies.subscriptions.fixture")
local channels = require("nc.channels")
local movies_store = require("movies.store")
local model = require("movies.subscriptions.model")
local store = require("movies.subscriptions.store")

local T0, P = fixture.T0, fixture.P
local USER, OTHER = fixture.USER, fixture.OTHER

describe("movies.subscriptions.model", function()
  local f, ctx, ch
  before_each(function()
    f = fixture.new()
    ctx = f.ctx
    ch = f.channel(USER)
  end)
  after_each(function()
    f.close()
  end)

  local function values(over)
    local v = { notify_url = f.callback_url(ch), notification_format = "json" }
    for k, x in pairs(over or {}) do
      v[k] = x
    end
    return v
  end

  local function create(over, user)
    return model.create(ctx, user or USER, values(over))
  end

  local function refused(name, row, err)
    assert.is_nil(row)
    assert.equal("SVC0002", err.id)
    assert.same({ name }, err.variables)
  end

  describe("create", function()
    it("stores what the fan-out needs", function()
      local row, created = create({ callback_data = 'a "b" <c> & \'d\'', movie_ids = { 2, 5 },
        notification_format = "xml", client_correlator = "c1", duration = 120 })
      assert.is_true(created)
      assert.same({ 2, 5 }, row.movie_ids)
      local stored = f.rows("SELECT * FROM movie_subscriptions")
      assert.equal(1, #stored)
      local s = stored[1]
      assert.equal(row.subscription_id, s.subscription_id)
      assert.equal(USER, s.user_id)
      assert.equal(ch.channel_id, s.channel_id)
      assert.equal(f.callback_url(ch), s.notify_url)
      assert.equal('a "b" <c> & \'d\'', s.callback_data)
      assert.equal('"a \\"b\\" <c> & \'d\'"', s.callback_data_json)
      assert.equal("a &quot;b&quot; &lt;c&gt; &amp; &apos;d&apos;", s.callback_data_xml)
      assert.equal("xml", s.notification_format)
      assert.equal("/movies/v1/tel%3A%2B19585550100/subscriptions/" .. row.subscription_id,
        s.resource_path)
      assert.equal(0, s.all_movies)
      assert.equal("c1", s.client_correlator)
      assert.equal(120, s.duration)
      assert.equal(T0 + 120, s.expires_at)
      assert.equal(T0, s.created_at)
      local filter = f.rows("SELECT movie_id, subscription_id FROM movie_subscription_filter"
        .. " ORDER BY movie_id")
      assert.same({ { movie_id = 2, subscription_id = row.subscription_id },
        { movie_id = 5, subscription_id = row.subscription_id } }, filter)
    end)

    it("marks an unfiltered subscription as for every movie, with NULL callbackData", function()
      local row = create()
      assert.is_nil(row.movie_ids)
      local s = f.rows("SELECT * FROM movie_subscriptions")[1]
      assert.equal(1, s.all_movies)
      assert.is_nil(s.callback_data)
      assert.is_nil(s.callback_data_json)
      assert.is_nil(s.callback_data_xml)
      assert.is_nil(s.client_correlator)
      assert.equal(0, f.count("movie_subscription_filter"))
    end)

    it("takes ids from ctx.random_id, never from the client", function()
      local row = create({ client_correlator = "mine" })
      assert.truthy(row.subscription_id:match("^id%d+$"))
    end)

    it("grants durations by policy", function()
      assert.equal(3600, create().duration)
      assert.equal(60, create({ duration = 0 }).duration)
      assert.equal(60, create({ duration = 59 }).duration)
      assert.equal(7200, create({ duration = 7200 }).duration)
      assert.equal(86400, create({ duration = 10 ^ 9 // 1 }).duration)
    end)

    it("follows the configured policy", function()
      f.close()
      f = fixture.new({ config = { subscription_duration_default = 100,
        subscription_duration_min = 5, subscription_duration_max = 200 } })
      ctx = f.ctx
      ch = f.channel(USER)
      assert.equal(100, create().duration)
      assert.equal(5, create({ duration = 1 }).duration)
      assert.equal(200, create({ duration = 1000 }).duration)
    end)

    it("logs one info line, with the ids shortened", function()
      local saved = f.app_ctx.random_id
      f.app_ctx.random_id = function() return "0123456789abcdefXYZ" end
      create({ movie_ids = { 1, 2 } })
      f.app_ctx.random_id = saved
      local lines = f.core.logged("info", "movie subscription")
      assert.equal(1, #lines)
      assert.equal("movie subscription 01234567... created: channel "
        .. channels.label(ch.channel_id) .. ", movies 1, 2, JSON notifications, 3600 s",
        lines[1])
      assert.is_nil(lines[1]:find("0123456789abcdef", 1, true))
      assert.is_nil(lines[1]:find(USER, 1, true))
    end)

    it("sets the expiry timer for the new end", function()
      create({ duration = 100 })
      assert.equal(T0 + 100, ctx.expiry.due)
      local found = false
      for _, t in ipairs(f.timer.pending()) do
        found = found or t.ms == 100 * 1000 + 5
      end
      assert.is_true(found)
    end)
  end)

  describe("clientCorrelator", function()
    it("answers a repeat with the first subscription and creates nothing", function()
      local first = create({ client_correlator = "c1", movie_ids = { 3, 4 } })
      local again, created = create({ client_correlator = "c1", movie_ids = { 9 },
        duration = 7200, notification_format = "xml" })
      assert.is_false(created)
      assert.equal(first.subscription_id, again.subscription_id)
      assert.same({ 3, 4 }, again.movie_ids)
      assert.equal(3600, again.duration)
      assert.equal("json", again.notification_format)
      assert.equal(1, f.count("movie_subscriptions"))
      assert.equal(1, #f.core.logged("info", "created"))
    end)

    it("answers a repeat even when a movie of the filter went meanwhile", function()
      local first = create({ client_correlator = "c1", movie_ids = { 7 } })
      assert(movies_store.delete(f.core.db, 7))
      local again, created = create({ client_correlator = "c1", movie_ids = { 7 } })
      assert.is_false(created)
      assert.equal(first.subscription_id, again.subscription_id)
    end)

    it("is kept per user", function()
      local other = f.channel(OTHER)
      local a = create({ client_correlator = "c1" })
      local b, created = model.create(ctx, OTHER, values({ client_correlator = "c1",
        notify_url = f.callback_url(other) }))
      assert.is_true(created)
      assert.are_not.equal(a.subscription_id, b.subscription_id)
    end)

    it("never matches an absent correlator", function()
      create()
      local _, created = create()
      assert.is_true(created)
      assert.equal(2, f.count("movie_subscriptions"))
    end)

    it("creates anew once the first has expired", function()
      local first = create({ client_correlator = "c1", duration = 60 })
      f.core.set_time(T0 + 61) -- past its end, before the timer ran
      local again, created = create({ client_correlator = "c1" })
      assert.is_true(created)
      assert.are_not.equal(first.subscription_id, again.subscription_id)
      assert.equal(1, f.count("movie_subscriptions"))
      assert.equal(1, #f.core.logged("info", model.label(first.subscription_id) .. " expired"))
    end)
  end)

  describe("max_subscriptions_per_user", function()
    local function over_limit(row, err, detail)
      assert.is_nil(row)
      assert.equal("POL0001", err.id)
      assert.equal(403, err.status)
      assert.same({ "too many movie subscriptions for this user (limit 2)" }, err.variables)
      assert.is_nil(detail)
    end

    before_each(function()
      ctx.policy.max_subscriptions_per_user = 2
    end)

    it("refuses a create beyond it with 403 POL0001, creating nothing", function()
      create({ client_correlator = "c1" })
      create({ movie_ids = { 1 } })
      local due = ctx.expiry.due
      over_limit(create({ movie_ids = { 2, 3 }, client_correlator = "c2", duration = 60 }))
      assert.equal(2, f.count("movie_subscriptions"))
      assert.equal(1, f.count("movie_subscription_filter"))
      -- movie 0 for the first, movie 1 for the second; none of 2 or 3.
      assert.equal(2, f.count("movie_fanout"))
      assert.is_false((store.by_correlator(f.core.db, USER, "c2")))
      assert.equal(2, #f.core.logged("info", "created"))
      assert.equal(due, ctx.expiry.due)
    end)

    it("still answers a repeated clientCorrelator with its subscription", function()
      local first = create({ client_correlator = "c1", movie_ids = { 4 } })
      create()
      local again, created = create({ client_correlator = "c1" })
      assert.is_false(created)
      assert.equal(first.subscription_id, again.subscription_id)
      assert.same({ 4 }, again.movie_ids)
    end)

    it("is per user", function()
      create()
      create()
      local other = f.channel(OTHER)
      local _, created = model.create(ctx, OTHER, values({ notify_url = f.callback_url(other) }))
      assert.is_true(created)
    end)

    it("counts live subscriptions only", function()
      local short = f.channel(USER, 30)
      local a = create({ duration = 60 })
      create({ notify_url = f.callback_url(short) })
      over_limit(create())
      -- Deleted: room for one.
      assert.is_true(model.remove(ctx, a.subscription_id))
      assert.is_true(select(2, create({ duration = 100 })))
      over_limit(create())
      -- Its channel past its end, before any timer removed it: room.
      f.core.set_time(T0 + 30)
      assert.is_true(select(2, create({ duration = 100 })))
      over_limit(create())
      -- Past its own end, before any timer removed it: room.
      f.core.set_time(T0 + 100)
      assert.is_true(select(2, create()))
    end)

    it("rolls back a refused create, keeping the expired one with its correlator", function()
      local old = create({ client_correlator = "c1", duration = 60 })
      create()
      f.core.set_time(T0 + 61) -- old is past its end; the timer has not run
      ctx.policy.max_subscriptions_per_user = 1
      local row, err = create({ client_correlator = "c1" })
      assert.is_nil(row)
      assert.equal("POL0001", err.id)
      assert.equal(2, f.count("movie_subscriptions"))
      assert.equal(old.subscription_id,
        store.by_correlator(f.core.db, USER, "c1").subscription_id)
      assert.equal(0, #f.core.logged("info", "expired"))
    end)

    it("comes after the checks that say the request itself is wrong", function()
      create()
      create()
      refused("callbackReference.notifyURL", create({ notify_url = "http://x/" }))
      refused("filter.movieId", create({ movie_ids = { 999999 } }))
    end)
  end)

  describe("notifyURL", function()
    it("must be the callbackURL of a live channel of the same user", function()
      local other = f.channel(OTHER)
      local cb = f.callback_url(ch)
      local cases = {
        "not a url",
        "http://other.example:8080/notificationchannel/v1/callbacks/" .. ch.callback_id,
        "https://nc.example:8080/notificationchannel/v1/callbacks/" .. ch.callback_id,
        "HTTP://nc.example:8080/notificationchannel/v1/callbacks/" .. ch.callback_id,
        cb .. "/",
        cb .. "?x=1",
        cb .. "#f",
        cb:gsub("callbacks/(.*)$", "callbacks/%%%1"),
        P .. "/notificationchannel/v1/callbacks/" .. ch.callback_id:sub(1, -2)
          .. string.format("%%%02X", ch.callback_id:byte(-1)),
        P .. "/notificationchannel/v1/callbacks/unknown",
        P .. "/notificationchannel/v1/callbacks/" .. ch.channel_id,
        channels.channel_url(P, ch),
        channels.represent(P, ch).resourceURL,
        f.callback_url(other),
      }
      for _, url in ipairs(cases) do
        refused("callbackReference.notifyURL", create({ notify_url = url }))
      end
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("refuses the callbackURL of a channel past its end, removed or not", function()
      local short = f.channel(USER, 5)
      f.core.set_time(T0 + 5) -- the channel timer has not run
      refused("callbackReference.notifyURL",
        create({ notify_url = f.callback_url(short) }))
      assert.equal(2, f.count("channels"))
      f.advance(1)
      assert.equal(1, f.count("channels"))
      refused("callbackReference.notifyURL",
        create({ notify_url = f.callback_url(short) }))
    end)

    it("refuses the callbackURL of a deleted channel", function()
      assert(channels.remove(f.nc, ch.channel_id))
      refused("callbackReference.notifyURL", create())
    end)

    it("follows public_url", function()
      f.close()
      f = fixture.new({ public_url = "https://api.example/base" })
      ctx = f.ctx
      ch = f.channel(USER)
      assert.equal("https://api.example/base/notificationchannel/v1/callbacks/"
        .. ch.callback_id, f.callback_url(ch))
      assert.is_true(select(2, create()))
      refused("callbackReference.notifyURL", create({
        notify_url = "http://nc.example:8080/notificationchannel/v1/callbacks/"
          .. ch.callback_id }))
    end)
  end)

  describe("filter", function()
    it("must name existing movies", function()
      refused("filter.movieId", create({ movie_ids = { 1, 999999 } }))
      assert(movies_store.delete(f.core.db, 3))
      refused("filter.movieId", create({ movie_ids = { 3 } }))
      assert.equal(0, f.count("movie_subscriptions"))
      assert.equal(0, f.count("movie_subscription_filter"))
    end)

    it("checks notifyURL first", function()
      refused("callbackReference.notifyURL",
        create({ notify_url = "http://x/", movie_ids = { 999999 } }))
    end)
  end)

  describe("find", function()
    it("finds a live subscription of its user, with its filter", function()
      local row = create({ movie_ids = { 4, 1 } })
      local found = model.find(ctx, USER, row.subscription_id)
      assert.equal(row.subscription_id, found.subscription_id)
      assert.same({ 1, 4 }, found.movie_ids)
      assert.is_nil(model.find(ctx, USER, create().subscription_id).movie_ids)
    end)

    it("finds nothing under another user", function()
      local row = create()
      assert.is_false(model.find(ctx, OTHER, row.subscription_id))
      assert.is_false(model.find(ctx, USER, "nope"))
    end)

    it("removes a subscription found past its end, and logs it", function()
      local row = create({ duration = 60 })
      f.core.set_time(T0 + 60)
      assert.is_false(model.find(ctx, USER, row.subscription_id))
      assert.equal(0, f.count("movie_subscriptions"))
      assert.same({ "movie subscription " .. row.subscription_id .. " expired" },
        f.core.logged("info", "expired"))
    end)

    it("finds nothing whose channel is past its end", function()
      local short = f.channel(USER, 5)
      local row = create({ notify_url = f.callback_url(short) })
      f.core.set_time(T0 + 5)
      assert.is_false(model.find(ctx, USER, row.subscription_id))
      assert.same({}, (model.list(ctx, USER)))
    end)
  end)

  describe("list", function()
    it("lists the live subscriptions of a user with their filters", function()
      local a = create({ movie_ids = { 2 } })
      local b = create({ duration = 60 })
      local c = create({ movie_ids = { 1, 3 } })
      local other = f.channel(OTHER)
      model.create(ctx, OTHER, values({ notify_url = f.callback_url(other) }))
      local rows, filters = model.list(ctx, USER)
      assert.same({ a.subscription_id, b.subscription_id, c.subscription_id },
        { rows[1].subscription_id, rows[2].subscription_id, rows[3].subscription_id })
      assert.same({ 2 }, filters[a.subscription_id])
      assert.same({ 1, 3 }, filters[c.subscription_id])
      assert.is_nil(filters[b.subscription_id])
      f.core.set_time(T0 + 60)
      rows = model.list(ctx, USER)
      assert.equal(2, #rows)
    end)
  end)

  describe("remove", function()
    it("deletes with the filter rows and logs it", function()
      local row = create({ movie_ids = { 1 } })
      assert.is_true(model.remove(ctx, row.subscription_id))
      assert.is_false(model.remove(ctx, row.subscription_id))
      assert.equal(0, f.count("movie_subscription_filter"))
      assert.same({ "movie subscription " .. row.subscription_id .. " deleted" },
        f.core.logged("info", "deleted"))
    end)

    it("removes every expired one in one go, logging each", function()
      local a = create({ duration = 60 })
      local b = create({ duration = 70 })
      create({ duration = 80 })
      f.core.set_time(T0 + 70)
      assert.equal(2, model.remove_expired(ctx))
      assert.equal(1, f.count("movie_subscriptions"))
      local lines = f.core.logged("info", "expired")
      assert.same({ "movie subscription " .. a.subscription_id .. " expired",
        "movie subscription " .. b.subscription_id .. " expired" }, lines)
      assert.equal(0, model.remove_expired(ctx))
    end)
  end)

  describe("the channel's end", function()
    it("runs with foreign keys on, as the core opens the database", function()
      assert.equal(1, f.rows("PRAGMA foreign_keys")[1].foreign_keys)
    end)

    it("removes its subscriptions when the channel is deleted", function()
      local other_ch = f.channel(USER)
      create({ movie_ids = { 1, 2 } })
      create()
      create({ notify_url = f.callback_url(other_ch), movie_ids = { 1 } })
      assert.is_true(channels.remove(f.nc, ch.channel_id, channels.DELETED))
      local left = f.rows("SELECT channel_id FROM movie_subscriptions")
      assert.same({ { channel_id = other_ch.channel_id } }, left)
      assert.equal(1, f.count("movie_subscription_filter"))
    end)

    it("removes its subscriptions when the channel expires", function()
      local short = f.channel(USER, 30)
      create({ notify_url = f.callback_url(short), movie_ids = { 1 }, duration = 3600 })
      create()
      f.advance(31) -- the channel expiry timer fires
      assert.equal(1, f.count("movie_subscriptions"))
      assert.equal(0, f.count("movie_subscription_filter"))
    end)

    it("removes its subscriptions when a create replaces an expired channel", function()
      local short = assert(channels.create(f.nc, USER, { channel_type = "LongPolling",
        lifetime = 10, client_correlator = "ch" }))
      create({ notify_url = f.callback_url(short) })
      f.core.set_time(T0 + 11)
      local _, created = channels.create(f.nc, USER, { channel_type = "LongPolling",
        client_correlator = "ch" })
      assert.is_true(created)
      assert.equal(0, f.count("movie_subscriptions"))
    end)
  end)

  describe("storage failures", function()
    it("roll back a create that failed half-way", function()
      local exec = f.core.db.exec
      f.core.db.exec = function(sql, ...)
        if sql:find("INSERT INTO movie_subscription_filter", 1, true) then
          return nil, "disk full"
        end
        return exec(sql, ...)
      end
      local row, err, detail = create({ movie_ids = { 1 } })
      f.core.db.exec = exec
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      assert.equal("disk full", detail)
      assert.equal(0, f.count("movie_subscriptions"))
    end)

    it("answer SVC2001 and leave nothing half-made", function()
      f.core.db.fail_with("disk I/O error")
      local row, err, detail = create({ movie_ids = { 1 } })
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      assert.equal("disk I/O error", detail)
      assert.is_nil(model.find(ctx, USER, "x"))
      assert.is_nil(model.list(ctx, USER))
      assert.is_nil(model.remove(ctx, "x"))
      assert.is_nil(model.remove_expired(ctx))
      f.core.db.fail_with(nil)
      assert.equal(0, f.count("movie_subscriptions"))
      assert.equal(0, #f.core.logged("info", "created"))
    end)
  end)
end)
