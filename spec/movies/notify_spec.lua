local fixture = require("nc.fixture")
local json = require("codec.json")
local xml = require("codec.xml")
local api = require("movies.api")
local changes = require("movies.changes")
local notify = require("movies.notify")
local channels = require("nc.channels")
local store = require("nc.store")

local URL = "http://nc.example:8080"
local UP = { title = "Up", premiere_date = "2009-05-13", director = "Pete Docter",
  genre = "Animation" }

local function copy(t, extra)
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  for k, v in pairs(extra or {}) do
    out[k] = v ~= false and v or nil
  end
  return out
end

-- The callbackData columns as the subscriptions store them
-- (sql/004_movie_subscriptions.sql).
local function data_json(data)
  return data and json.encode(data)
end
local function data_xml(data)
  return data and (xml.escape(data):gsub("[\"']", { ['"'] = "&quot;", ["'"] = "&apos;" }))
end

-- fill_1 as movies/notify.lua's CALLBACK_JSON / CALLBACK_XML wrap it.
local function M_json(data)
  return notify.CALLBACK_JSON.open .. data_json(data) .. notify.CALLBACK_JSON.close
end
local function M_xml(data)
  return notify.CALLBACK_XML.open .. data_xml(data) .. notify.CALLBACK_XML.close
end

-- The element children of an XML node as { name, text } pairs, in order.
local function children(node)
  local out = {}
  for _, c in ipairs(xml.elements(node)) do
    out[#out + 1] = c.name
  end
  return out
end

-- An unprefixed attribute (codec/xml's attribute() looks up qualified ones).
local function attr(node, name)
  for _, a in ipairs(node.attrs) do
    if a.name == name then
      return a.value
    end
  end
end

local function child(node, name)
  for _, c in ipairs(xml.elements(node)) do
    if c.name == name then
      return c
    end
  end
end

describe("movies.notify", function()
  local f, ctx, woken
  before_each(function()
    f = fixture.new()
    ctx = f.ctx
    ctx.on_change = notify.on_change
    woken = {}
    ctx.wake_outbox = function(first, last)
      -- Never from inside the transaction: a nested one would raise here.
      ctx.db.transaction(function() end)
      woken[#woken + 1] = { first, last }
    end
  end)
  after_each(function()
    f.close()
  end)

  -- A change record as movies/changes.lua makes it.
  local function created(fields)
    local row = copy(UP, fields)
    row.movie_id, row.last_modified = 7, "2025-11-28T12:00:00.000Z"
    return { event = changes.CREATED, movie_id = 7, changed = { "title", "premiereDate",
      "director", "genre" }, previous = {}, new = row }
  end
  local function updated()
    local old = copy(UP, { movie_id = 7, last_modified = "2025-11-28T12:00:00.000Z",
      genre = false })
    local new = copy(old, { premiere_date = "2009-06-01", genre = "Animation",
      last_modified = "2025-11-28T12:00:01.000Z" })
    return { event = changes.UPDATED, movie_id = 7, changed = { "premiereDate", "genre" },
      previous = { premiereDate = "2009-05-13", genre = json.null }, old = old, new = new }
  end
  local function deleted()
    local old = copy(UP, { movie_id = 7, last_modified = "2025-11-28T12:00:00.000Z",
      director = false })
    return { event = changes.DELETED, movie_id = 7, changed = { "title", "premiereDate",
      "genre" }, previous = { title = "Up", premiereDate = "2009-05-13", genre = "Animation" },
      old = old }
  end

  local SUB = "/movies/v1/tel%3A%2B1/subscriptions/s1"

  describe("templates", function()
    it("formats MovieUpdated in JSON, members in the order of API.md 3", function()
      local t = notify.templates(updated(), URL)
      assert.equal('{"movieNotification":{"callbackData":"x","eventType":"MovieUpdated",'
        .. '"movie":{"director":"Pete Docter","genre":"Animation",'
        .. '"lastModified":"2025-11-28T12:00:01.000Z","movieId":7,"premiereDate":"2009-06-01",'
        .. '"resourceURL":"http://nc.example:8080/movies/v1/movies/7","title":"Up"},'
        .. '"changedFields":["premiereDate","genre"],'
        .. '"previous":{"genre":null,"premiereDate":"2009-05-13"},'
        .. '"link":{"rel":"MovieSubscription",'
        .. '"href":"http://nc.example:8080/movies/v1/tel%3A%2B1/subscriptions/s1"}}}',
        notify.fill(t.json, "json", '"x"', SUB))
    end)

    it("formats MovieUpdated in XML, a NULL previous value as xsi:nil", function()
      local t = notify.templates(updated(), URL)
      assert.equal('<mv:movieNotification xmlns:mv="urn:ncserver:xml:movies:1"'
        .. ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. "<callbackData>x</callbackData><eventType>MovieUpdated</eventType>"
        .. "<movie><movieId>7</movieId><title>Up</title><premiereDate>2009-06-01</premiereDate>"
        .. "<director>Pete Docter</director><genre>Animation</genre>"
        .. "<lastModified>2025-11-28T12:00:01.000Z</lastModified>"
        .. "<resourceURL>http://nc.example:8080/movies/v1/movies/7</resourceURL></movie>"
        .. "<changedFields>premiereDate</changedFields><changedFields>genre</changedFields>"
        .. '<previous><premiereDate>2009-05-13</premiereDate><genre xsi:nil="true"/></previous>'
        .. '<link rel="MovieSubscription"'
        .. ' href="http://nc.example:8080/movies/v1/tel%3A%2B1/subscriptions/s1"/>'
        .. "</mv:movieNotification>",
        notify.fill(t.xml, "xml", "x", SUB))
      local root = assert(xml.parse(notify.fill(t.xml, "xml", "x", SUB)))
      assert.equal(notify.NS, root.ns)
      assert.is_nil(child(root, "movie").ns)
    end)

    it("formats MovieCreated: every field with a value changed, no previous", function()
      local t = notify.templates(created({ genre = false }), URL)
      local doc = json.decode(notify.fill(t.json, "json", nil, SUB)).movieNotification
      assert.equal("MovieCreated", doc.eventType)
      assert.same({ "title", "premiereDate", "director", "genre" }, doc.changedFields)
      assert.is_nil(doc.previous)
      assert.is_nil(doc.callbackData)
      assert.is_nil(doc.movie.genre)
      assert.equal(7, doc.movie.movieId)
      local root = assert(xml.parse(notify.fill(t.xml, "xml", nil, SUB)))
      assert.same({ "eventType", "movie", "changedFields", "changedFields", "changedFields",
        "changedFields", "link" }, children(root))
      assert.same({ "movieId", "title", "premiereDate", "director", "lastModified",
        "resourceURL" }, children(child(root, "movie")))
      -- No xsi:nil, no xsi declaration.
      assert.is_nil(t.xml:find("xsi", 1, true))
    end)

    it("formats MovieDeleted: the movie as it was last, previous of every field it had", function()
      local t = notify.templates(deleted(), URL)
      local doc = json.decode(notify.fill(t.json, "json", '"d"', SUB)).movieNotification
      assert.equal("MovieDeleted", doc.eventType)
      assert.equal("d", doc.callbackData)
      assert.same({ movieId = 7, title = "Up", premiereDate = "2009-05-13", genre = "Animation",
        lastModified = "2025-11-28T12:00:00.000Z", resourceURL = URL .. "/movies/v1/movies/7" },
        doc.movie)
      assert.same({ "title", "premiereDate", "genre" }, doc.changedFields)
      assert.same({ title = "Up", premiereDate = "2009-05-13", genre = "Animation" }, doc.previous)
      assert.same({ rel = "MovieSubscription", href = URL .. SUB }, doc.link)
      local root = assert(xml.parse(notify.fill(t.xml, "xml", "d", SUB)))
      assert.same({ "callbackData", "eventType", "movie", "changedFields", "changedFields",
        "changedFields", "previous", "link" }, children(root))
      assert.same({ "title", "premiereDate", "genre" }, children(child(root, "previous")))
      local link = child(root, "link")
      assert.equal("MovieSubscription", attr(link, "rel"))
      assert.equal(URL .. SUB, attr(link, "href"))
    end)

    for _, data in ipairs({ 'say "hi"', "a < b && c > d", "é ü 日本 \u{1F3AC}", "back\\slash",
      "it's </callbackData>", "" }) do
      it("carries callbackData " .. string.format("%q", data) .. " intact in both formats", function()
        local t = notify.templates(updated(), URL)
        local doc = json.decode(notify.fill(t.json, "json", data_json(data), SUB))
        assert.equal(data, doc.movieNotification.callbackData)
        local root = assert(xml.parse(notify.fill(t.xml, "xml", data_xml(data), SUB)))
        assert.equal(data, xml.text(child(root, "callbackData")))
        assert.equal("callbackData", children(root)[1])
      end)
    end

    it("escapes movie text in both formats", function()
      local c = updated()
      c.new.title = 'A "quoted" <b>&</b> title'
      local t = notify.templates(c, URL)
      assert.equal(c.new.title, json.decode(notify.fill(t.json, "json", nil, SUB))
        .movieNotification.movie.title)
      local root = assert(xml.parse(notify.fill(t.xml, "xml", nil, SUB)))
      assert.equal(c.new.title, xml.text(child(child(root, "movie"), "title")))
    end)

    it("holds each placeholder exactly once, whatever the movie and the URL say", function()
      local c = updated()
      c.new.title = notify.CALLBACK .. notify.SUBSCRIPTION
      c.new.director = "\1sub\1"
      c.previous.premiereDate = notify.CALLBACK
      local t = notify.templates(c, URL .. "/" .. notify.SUBSCRIPTION)
      for _, format in ipairs({ "json", "xml" }) do
        local text = t[format]
        local n1 = select(2, text:gsub("\1cb\1", ""))
        local n2 = select(2, text:gsub("\1sub\1", ""))
        assert.equal(1, n1, format)
        assert.equal(1, n2, format)
      end
      -- JSON escapes the control characters, XML replaces them.
      local doc = json.decode(notify.fill(t.json, "json", nil, SUB)).movieNotification
      assert.equal(notify.CALLBACK .. notify.SUBSCRIPTION, doc.movie.title)
      assert.truthy(xml.parse(notify.fill(t.xml, "xml", nil, SUB)))
    end)

    it("refuses to make a template that breaks the guard", function()
      local saved = notify.CALLBACK
      notify.CALLBACK = "movie" -- occurs more than once
      local ok, err = pcall(notify.templates, updated(), URL)
      notify.CALLBACK = saved
      assert.is_false(ok)
      assert.matches("template holds", err)
    end)
  end)

  describe("fan-out", function()
    local n_sub = 0

    local function channel(user)
      return assert(channels.create(ctx, user or "tel:+1", { channel_type = "WebSockets" }))
    end

    -- A subscription row of `ch` as the subscriptions area stores it.
    -- opts: format ("json"), data (callbackData), movies (nil: every movie),
    -- expires_in (seconds, default 3600).
    local function subscribe(ch, opts)
      opts = opts or {}
      n_sub = n_sub + 1
      local id = opts.id or string.format("s%03d", n_sub)
      assert(ctx.db.exec("INSERT INTO movie_subscriptions (subscription_id, user_id,"
        .. " channel_id, notify_url, callback_data, callback_data_json, callback_data_xml,"
        .. " notification_format, resource_path, all_movies, duration, expires_at, created_at)"
        .. " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        id, ch.user_id, ch.channel_id, "http://x", opts.data, data_json(opts.data),
        data_xml(opts.data), opts.format or "json",
        "/movies/v1/" .. "tel%3A%2B1" .. "/subscriptions/" .. id,
        opts.movies and 0 or 1, 3600, ctx.now() + (opts.expires_in or 3600), ctx.now()))
      for _, movie_id in ipairs(opts.movies or {}) do
        assert(ctx.db.exec("INSERT INTO movie_subscription_filter (movie_id, subscription_id)"
          .. " VALUES (?, ?)", movie_id, id))
      end
      return id
    end

    -- The queued rows with their bodies as delivery reads them
    -- (nc/store.lua puts a fan-out row's body together from its template).
    local function outbox()
      return f.rows("SELECT " .. store.QUEUED_COLUMNS .. ", o.channel_id AS channel_id"
        .. store.QUEUED_FROM .. " ORDER BY o.seq")
    end

    -- The distinct channels of the rows of wake-up `i`, sorted.
    local function woken_channels(i)
      local ids = {}
      for _, r in ipairs(f.rows("SELECT DISTINCT channel_id FROM outbox WHERE seq >= ?"
        .. " AND seq <= ? ORDER BY channel_id", woken[i][1], woken[i][2])) do
        ids[#ids + 1] = r.channel_id
      end
      return ids
    end

    local function create_movie()
      local row = assert(changes.apply(ctx, nil, copy(UP)))
      notify.settled(ctx, true)
      return row
    end

    -- The change record create_movie's movie gave (the first movie).
    local function created_change()
      local row = f.rows("SELECT * FROM movies WHERE movie_id = 1")[1]
      return { event = changes.CREATED, movie_id = 1,
        changed = { "title", "premiereDate", "director", "genre" }, previous = {}, new = row }
    end

    before_each(function()
      n_sub = 0
    end)

    it("queues one notification per matching live subscription, in its format", function()
      local a, b, c, d, e = channel(), channel(), channel(), channel(), channel()
      local s_all = subscribe(a, { data = "all" })
      local s_one = subscribe(b, { movies = { 1 }, format = "xml", data = "one & only" })
      subscribe(c, { movies = { 2 } })
      subscribe(d, { expires_in = -1 })
      -- A channel past its end that the expiry timer has not removed yet:
      -- the fan-out does not read channels, so it gets a row, which goes
      -- with the channel when the timer removes it.
      subscribe(e)
      assert(ctx.db.exec("UPDATE channels SET expires_at = ? WHERE channel_id = ?",
        ctx.now(), e.channel_id))

      local row = create_movie()
      assert.equal(1, row.movie_id)
      local queued = outbox()
      assert.equal(3, #queued)
      assert.equal(1, f.count("outbox WHERE channel_id = '" .. e.channel_id .. "'"))
      assert.is_true(channels.remove(ctx, e.channel_id, channels.EXPIRED))
      local rows = outbox()
      assert.equal(2, #rows)
      local by_channel = {}
      for _, r in ipairs(rows) do
        by_channel[r.channel_id] = r
        assert.equal("movieNotification", r.root)
      end
      local ja = json.decode(by_channel[a.channel_id].body).movieNotification
      assert.equal("json", by_channel[a.channel_id].format)
      assert.equal("all", ja.callbackData)
      assert.equal("MovieCreated", ja.eventType)
      assert.equal(URL .. "/movies/v1/tel%3A%2B1/subscriptions/" .. s_all, ja.link.href)
      local xb = assert(xml.parse(by_channel[b.channel_id].body))
      assert.equal("xml", by_channel[b.channel_id].format)
      assert.equal("one & only", xml.text(child(xb, "callbackData")))
      assert.equal(URL .. "/movies/v1/tel%3A%2B1/subscriptions/" .. s_one,
        attr(child(xb, "link"), "href"))
      -- Woken once, after the commit, with exactly the rows queued.
      assert.same({ { queued[1].seq, queued[3].seq } }, woken)
      local want = { a.channel_id, b.channel_id }
      table.sort(want)
      assert.same(want, woken_channels(1))
      assert.equal(1, #f.core.logged("info", "movie 1 MovieCreated: 3 notification(s) queued"))
      -- The statement's own time, for tests/bench/fanout.py.
      assert.equal(1, #f.core.logged("debug", "movie 1: fan-out INSERT of 3 row(s) took"))
    end)

    it("leaves out callbackData when the subscription has none", function()
      subscribe(channel(), {})
      subscribe(channel(), { format = "xml" })
      create_movie()
      local rows = outbox()
      assert.is_nil(json.decode(rows[1].body).movieNotification.callbackData)
      assert.is_nil(child(assert(xml.parse(rows[2].body)), "callbackData"))
      assert.equal(0, select(2, rows[1].body:gsub("\1", "")))
      assert.equal(0, select(2, rows[2].body:gsub("\1", "")))
    end)

    it("gives each of a channel's subscriptions its own row", function()
      local a = channel()
      local s1 = subscribe(a, {})
      local s2 = subscribe(a, { movies = { 1 } })
      create_movie()
      local hrefs = {}
      for _, r in ipairs(outbox()) do
        hrefs[#hrefs + 1] = json.decode(r.body).movieNotification.link.href:match("[^/]+$")
      end
      table.sort(hrefs)
      assert.same({ s1, s2 }, hrefs)
      assert.same({ a.channel_id }, woken_channels(1))
    end)

    it("matches a subscription once even with a stray filter on an all-movies one", function()
      local id = subscribe(channel(), {})
      assert(ctx.db.exec("INSERT INTO movie_subscription_filter VALUES (1, ?)", id))
      create_movie()
      assert.equal(1, #outbox())
    end)

    it("notifies changes and deletes with the change's content", function()
      local a = channel()
      subscribe(a, { movies = { 1 } })
      local row = create_movie()
      f.core.advance(1)
      local old = row
      row = assert(changes.apply(ctx, old, copy(old, { premiere_date = "2010-01-01" })))
      notify.settled(ctx, true)
      assert(changes.apply(ctx, row, nil))
      notify.settled(ctx, true)
      local rows = outbox()
      assert.equal(3, #rows)
      local upd = json.decode(rows[2].body).movieNotification
      assert.equal("MovieUpdated", upd.eventType)
      assert.same({ "premiereDate" }, upd.changedFields)
      assert.same({ premiereDate = "2009-05-13" }, upd.previous)
      assert.equal("2010-01-01", upd.movie.premiereDate)
      local del = json.decode(rows[3].body).movieNotification
      assert.equal("MovieDeleted", del.eventType)
      assert.equal("2010-01-01", del.movie.premiereDate)
      assert.equal(3, #woken)
    end)

    it("sends nothing for a change that alters nothing", function()
      subscribe(channel(), {})
      local row = create_movie()
      woken = {}
      f.core.advance(1)
      local same, change = changes.apply(ctx, row, copy(row))
      notify.settled(ctx, true)
      assert.same(row, same)
      assert.is_nil(change)
      assert.equal(1, #outbox())
      assert.same({}, woken)
    end)

    it("queues nothing and wakes nobody without matching subscriptions", function()
      subscribe(channel(), { movies = { 5 } })
      create_movie()
      assert.equal(0, #outbox())
      assert.same({}, woken)
      assert.equal(1, #f.core.logged("debug", "0 notification(s) queued"))
    end)

    it("rolls the movie change back with its notifications when the fan-out fails", function()
      subscribe(channel(), {})
      local row = create_movie()
      woken = {}
      assert(ctx.db.exec("CREATE TEMP TRIGGER full BEFORE INSERT ON outbox"
        .. " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))
      local res, err = changes.apply(ctx, row, copy(row, { title = "Down" }))
      notify.settled(ctx, res ~= nil)
      assert.is_nil(res)
      assert.equal("SVC2001", err.id)
      assert.equal("Up", f.rows("SELECT title FROM movies")[1].title)
      assert.equal(1, #outbox())
      assert.same({}, woken)
      -- The template went with the rolled back transaction.
      assert.equal(1, f.rows("SELECT count(*) AS n FROM outbox_templates")[1].n)
    end)

    it("rolls back when the template cannot be stored", function()
      subscribe(channel(), {})
      local row = create_movie()
      woken = {}
      assert(ctx.db.exec("CREATE TEMP TRIGGER full BEFORE INSERT ON outbox_templates"
        .. " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))
      local res, err = changes.apply(ctx, row, copy(row, { title = "Down" }))
      notify.settled(ctx, res ~= nil)
      assert.is_nil(res)
      assert.equal("SVC2001", err.id)
      assert.equal("Up", f.rows("SELECT title FROM movies")[1].title)
      assert.equal(1, #outbox())
      assert.same({}, woken)
    end)

    describe("storage", function()
      -- The stored text of one change: a template row, and per
      -- subscription a row holding only the template's id and its parts.
      local function stored()
        return f.rows("SELECT seq, format, body, template_id, fill_1, fill_2 FROM outbox"
          .. " ORDER BY seq"), f.rows("SELECT * FROM outbox_templates ORDER BY template_id")
      end

      it("stores the text once per change, and per subscription only its parts", function()
        local s1 = subscribe(channel(), { data = 'say "hi"' })
        local s2 = subscribe(channel(), { format = "xml", data = "a < b" })
        local s3 = subscribe(channel(), {})
        local s4 = subscribe(channel(), { format = "xml" })
        create_movie()
        local rows, templates = stored()
        assert.equal(1, #templates)
        local t = templates[1]
        assert.equal(4, #rows)
        local want = {
          { "json", '"callbackData":"say \\"hi\\"",', s1 },
          { "xml", "<callbackData>a &lt; b</callbackData>", s2 },
          { "json", "", s3 },
          { "xml", "", s4 },
        }
        for i, r in ipairs(rows) do
          assert.is_nil(r.body)
          assert.equal(t.template_id, r.template_id)
          assert.equal(want[i][1], r.format)
          assert.equal(want[i][2], r.fill_1)
          assert.equal("/movies/v1/tel%3A%2B1/subscriptions/" .. want[i][3], r.fill_2)
        end
        -- The template is the text notify.templates made, cut at its
        -- placeholders.
        local full = notify.templates(created_change(), URL)
        assert.same({ notify.pieces(full.json) }, { t.json_head, t.json_mid, t.json_tail })
        assert.same({ notify.pieces(full.xml) }, { t.xml_head, t.xml_mid, t.xml_tail })
      end)

      for _, format in ipairs({ "json", "xml" }) do
        for _, data in ipairs({ false, "mine", 'it\'s "quoted" <&> \\ é' }) do
          it(string.format("reads back in %s, %s, the text notify.fill makes", format,
            data and "callbackData " .. string.format("%q", data) or "without callbackData"),
            function()
              local id = subscribe(channel(), { format = format, data = data or nil })
              create_movie()
              local t = notify.templates(created_change(), URL)
              local path = "/movies/v1/tel%3A%2B1/subscriptions/" .. id
              local cb = data and (format == "json" and data_json(data) or data_xml(data)) or nil
              local rows = outbox()
              assert.equal(1, #rows)
              assert.equal(notify.fill(t[format], format, cb, path), rows[1].body)
              -- And delivery reads the same (nc/store.lua).
              local q = store.queued(ctx.db, rows[1].channel_id)
              assert.equal(rows[1].body, q[1].body)
              assert.equal(notify.ROOT, q[1].root)
              assert.equal(format, q[1].format)
            end)
        end
      end

      it("delivers what was queued even if the subscription goes before delivery", function()
        local ch = channel()
        local id = subscribe(ch, { data = "before" })
        create_movie()
        local body = outbox()[1].body
        assert(ctx.db.exec("DELETE FROM movie_subscriptions WHERE subscription_id = ?", id))
        assert.equal(body, store.queued(ctx.db, ch.channel_id)[1].body)
        assert.equal("before", json.decode(body).movieNotification.callbackData)
      end)

      it("keeps rows of callback POSTs and fan-out rows of one channel in seq order", function()
        local ch = channel()
        subscribe(ch, { data = "fan" })
        assert(store.enqueue(ctx.db, ch.channel_id, "aNotification", "json",
          '{"aNotification":{"n":1}}', ctx.now()))
        create_movie()
        assert(store.enqueue(ctx.db, ch.channel_id, "aNotification", "xml",
          '<a:aNotification xmlns:a="urn:a"><n>2</n></a:aNotification>', ctx.now()))
        local q = store.queued(ctx.db, ch.channel_id)
        assert.same({ "aNotification", "movieNotification", "aNotification" },
          { q[1].root, q[2].root, q[3].root })
        assert.equal('{"aNotification":{"n":1}}', q[1].body)
        assert.equal("fan", json.decode(q[2].body).movieNotification.callbackData)
        assert.equal('<a:aNotification xmlns:a="urn:a"><n>2</n></a:aNotification>', q[3].body)
      end)

      it("leaves no template behind when nobody is notified", function()
        subscribe(channel(), { movies = { 5 } })
        create_movie()
        local rows, templates = stored()
        assert.same({}, rows)
        assert.same({}, templates)
      end)

      it("leaves the template to the sweep once its rows are delivered or gone", function()
        local a, b = channel(), channel()
        subscribe(a, {})
        subscribe(b, {})
        create_movie()
        local sweep = require("nc.sweep").new(ctx)
        assert.equal(0, sweep:run())
        local q = store.queued(ctx.db, a.channel_id)
        assert.equal(1, store.dequeue(ctx.db, a.channel_id, { q[1].seq }))
        assert.equal(0, sweep:run())
        -- b's row goes with its channel.
        assert(channels.remove(ctx, b.channel_id, "deleted"))
        assert.equal(1, sweep:run())
        local rows, templates = stored()
        assert.same({}, rows)
        assert.same({}, templates)
      end)
    end)

    it("runs two statements whatever the number of subscriptions", function()
      for _ = 1, 50 do
        subscribe(channel(), {})
      end
      local before = #ctx.db.statements
      create_movie()
      local fan, templates = 0, 0
      for i = before + 1, #ctx.db.statements do
        if ctx.db.statements[i]:find("INSERT INTO outbox (", 1, true) then
          fan = fan + 1
        elseif ctx.db.statements[i]:find("INSERT INTO outbox_templates", 1, true) then
          templates = templates + 1
        end
      end
      assert.equal(1, fan)
      assert.equal(1, templates)
      local rows = outbox()
      assert.equal(50, #rows)
      -- One range, the seqs of the statement's rows, consecutive.
      assert.same({ { rows[1].seq, rows[50].seq } }, woken)
      assert.equal(49, rows[50].seq - rows[1].seq)
      assert.equal(50, #woken_channels(1))
    end)

    it("finds subscriptions by two ranges of movie_fanout, reading nothing else", function()
      local args = { "r", 1, 0, 1, 0 }
      local plan = f.rows("EXPLAIN QUERY PLAN " .. notify.FAN_OUT_SQL, table.unpack(args))
      local lines = {}
      for _, r in ipairs(plan) do
        lines[#lines + 1] = r.detail
      end
      local text = table.concat(lines, "\n")
      assert.matches("SEARCH movie_fanout USING PRIMARY KEY %(movie_id=%?%)", text)
      assert.equal(1, #lines)
      assert.is_nil(text:find("expires_at", 1, true))
    end)

    it("keeps movie_fanout's callbackData wrapping as the templates expect", function()
      local a = channel()
      local s1 = subscribe(a, { data = 'say "hi" & <bye>' })
      local s2 = subscribe(a, { data = 'say "hi" & <bye>', format = "xml", movies = { 1, 2 } })
      local s3 = subscribe(a, { movies = { 3 } })
      local got = f.rows("SELECT movie_id, subscription_id, channel_id, notification_format,"
        .. " fill_1, fill_2 FROM movie_fanout ORDER BY movie_id, subscription_id")
      assert.equal(4, #got)
      assert.same({ 0, s1, "json" }, { got[1].movie_id, got[1].subscription_id,
        got[1].notification_format })
      assert.equal(M_json('say "hi" & <bye>'), got[1].fill_1)
      assert.same({ 1, s2, "xml" }, { got[2].movie_id, got[2].subscription_id,
        got[2].notification_format })
      assert.equal(M_xml('say "hi" & <bye>'), got[2].fill_1)
      assert.same({ 2, s2 }, { got[3].movie_id, got[3].subscription_id })
      assert.same({ 3, s3, "" }, { got[4].movie_id, got[4].subscription_id, got[4].fill_1 })
      for _, r in ipairs(got) do
        assert.equal(a.channel_id, r.channel_id)
        assert.equal("/movies/v1/tel%3A%2B1/subscriptions/" .. r.subscription_id, r.fill_2)
      end
      -- They go with the subscription, and with its channel.
      assert(ctx.db.exec("DELETE FROM movie_subscriptions WHERE subscription_id = ?", s2))
      assert.equal(2, f.count("movie_fanout"))
      assert.is_true(channels.remove(ctx, a.channel_id))
      assert.equal(0, f.count("movie_fanout"))
    end)


    it("is wired by the movies area: a PATCH queues and wakes after its commit", function()
      local a = channel()
      subscribe(a, { movies = { 1 } })
      local area = api.context(ctx)
      local function req(method, path, body)
        return { method = method, path = path, query = "",
          headers = { ["content-type"] = "application/json" }, body = body or "" }
      end
      local res = api.create(area, req("POST", "/movies/v1/movies",
        '{"movie":{"title":"Up","premiereDate":"2009-05-13"}}'))
      assert.equal(201, res.status)
      res = api.patch(area, req("PATCH", "/movies/v1/movies/1",
        '{"movie":{"premiereDate":"2026-05-01"}}'), { movieId = "1" })
      assert.equal(200, res.status)
      -- Unchanged: no notification.
      api.patch(area, req("PATCH", "/movies/v1/movies/1",
        '{"movie":{"premiereDate":"2026-05-01"}}'), { movieId = "1" })
      res = api.delete(area, req("DELETE", "/movies/v1/movies/1"), { movieId = "1" })
      assert.equal(204, res.status)
      local events = {}
      for _, r in ipairs(outbox()) do
        events[#events + 1] = json.decode(r.body).movieNotification.eventType
      end
      assert.same({ "MovieCreated", "MovieUpdated", "MovieDeleted" }, events)
      assert.equal(3, #woken)
      for i = 1, 3 do
        assert.equal(woken[i][1], woken[i][2])
      end
    end)
  end)
  describe("through app.lua, with the subscriptions resource", function()
    local fake_core = require("support.fake_core")
    local app, core
    local PROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"

    before_each(function()
      core = fake_core.install({ hub = true })
      package.loaded.app = nil
      app = require("app")
    end)
    after_each(function()
      core.db.close()
      package.loaded.core = nil
      package.loaded.app = nil
    end)

    local function request(method, path, body)
      return { method = method, path = path, query = "", body = body or "",
        headers = { ["content-type"] = "application/json" } }
    end
    local function path(url)
      return url:match("^%a+://nc%.example:8080(/.*)$")
    end

    it("delivers a moved premiere to the subscriber's WebSocket, in JSON and in XML", function()
      local res = app.handle(request("POST", "/notificationchannel/v1/tel%3A%2B1/channels",
        '{"notificationChannel":{"channelType":"WebSockets"}}'))
      assert.equal(201, res.status, res.body)
      local ch = json.decode(res.body).notificationChannel
      local up = request("GET", path(ch.channelData.channelURL))
      up.headers = { upgrade = "websocket", ["sec-websocket-protocol"] = PROTOCOL }
      res = app.handle(up)
      local key = res.upgrade.key
      app.ws_open(key, core.hub.apply(key, res))
      local subs = {}
      for i, format in ipairs({ "JSON", "XML" }) do
        res = app.handle(request("POST", "/movies/v1/tel%3A%2B1/subscriptions", json.encode({
          movieSubscription = { callbackReference = { notifyURL = ch.callbackURL,
            callbackData = "mine <" .. i .. '> "&"', notificationFormat = format },
            filter = { movieId = json.array({ 1 }) } } })))
        assert.equal(201, res.status, res.body)
        subs[i] = json.decode(res.body).movieSubscription.resourceURL
      end
      res = app.handle(request("PATCH", "/movies/v1/movies/1",
        '{"movie":{"premiereDate":"2026-05-01"}}'))
      assert.equal(200, res.status, res.body)
      -- No timers under this fake: the wake-up queue ran at once.
      local texts = core.hub.texts(key)
      assert.equal(2, #texts)
      local n = json.decode(texts[1]).notificationList[1].movieNotification
      assert.equal("MovieUpdated", n.eventType)
      assert.equal('mine <1> "&"', n.callbackData)
      assert.same({ "premiereDate" }, n.changedFields)
      assert.equal("2026-05-01", n.movie.premiereDate)
      assert.same({ rel = "MovieSubscription", href = subs[1] }, n.link)
      local list = assert(xml.parse(texts[2]))
      local root = xml.elements(list)[1]
      assert.equal("movieNotification", root.localname)
      assert.equal(notify.NS, root.ns)
      assert.equal('mine <2> "&"', xml.text(child(root, "callbackData")))
      assert.equal(subs[2], attr(child(root, "link"), "href"))
      -- The same PATCH again changes nothing and sends nothing.
      app.handle(request("PATCH", "/movies/v1/movies/1", '{"movie":{"premiereDate":"2026-05-01"}}'))
      assert.equal(2, #core.hub.texts(key))
    end)

    it("answers a long poll in the other format as notify.lua writes that format", function()
      local res = app.handle(request("POST", "/notificationchannel/v1/tel%3A%2B1/channels",
        '{"notificationChannel":{"channelType":"LongPolling"}}'))
      assert.equal(201, res.status, res.body)
      local ch = json.decode(res.body).notificationChannel
      local subs = {}
      for i, format in ipairs({ "XML", "JSON" }) do
        res = app.handle(request("POST", "/movies/v1/tel%3A%2B1/subscriptions", json.encode({
          movieSubscription = { callbackReference = { notifyURL = ch.callbackURL,
            callbackData = "s" .. i, notificationFormat = format },
            filter = { movieId = json.array({ 1 }) } } })))
        assert.equal(201, res.status, res.body)
        subs[i] = json.decode(res.body).movieSubscription.resourceURL
      end
      res = app.handle(request("PATCH", "/movies/v1/movies/1",
        '{"movie":{"premiereDate":"2026-05-01"}}'))
      assert.equal(200, res.status, res.body)
      local rows = core.db.query("SELECT " .. store.QUEUED_COLUMNS .. store.QUEUED_FROM
        .. " ORDER BY o.seq")
      assert.same({ "xml", "json" }, { rows[1].format, rows[2].format })

      local poll = request("POST", path(ch.channelData.channelURL), "{}")
      poll.headers.accept = "application/json"
      res = app.handle(poll)
      assert.equal(200, res.status, res.body)
      -- Both as JSON; the XML one with movieId a number, as notify.lua's
      -- JSON has it: the same document but for the subscription's parts.
      local text = res.body
      assert.truthy(text:find('"movieId":1,', 1, true), text)
      local list = json.decode(text).notificationList
      local native = json.decode(rows[2].body).movieNotification
      local converted = list[1].movieNotification
      assert.equal("s1", converted.callbackData)
      assert.same({ rel = "MovieSubscription", href = subs[1] }, converted.link)
      converted.callbackData, converted.link = native.callbackData, native.link
      assert.same(native, converted)
      core.hub.answered(true)
    end)

    it("answers an XML long poll with JSON-stored ones in the mv namespace", function()
      local res = app.handle(request("POST", "/notificationchannel/v1/tel%3A%2B1/channels",
        '{"notificationChannel":{"channelType":"LongPolling"}}'))
      local ch = json.decode(res.body).notificationChannel
      for i, format in ipairs({ "JSON", "XML" }) do
        res = app.handle(request("POST", "/movies/v1/tel%3A%2B1/subscriptions", json.encode({
          movieSubscription = { callbackReference = { notifyURL = ch.callbackURL,
            callbackData = "s" .. i, notificationFormat = format } } })))
        assert.equal(201, res.status, res.body)
      end
      res = app.handle(request("DELETE", "/movies/v1/movies/1"))
      assert.equal(204, res.status, res.body)
      local rows = core.db.query("SELECT " .. store.QUEUED_COLUMNS .. store.QUEUED_FROM
        .. " ORDER BY o.seq")
      local poll = request("POST", path(ch.channelData.channelURL), "{}")
      poll.headers.accept = "application/xml"
      res = app.handle(poll)
      assert.equal(200, res.status, res.body)
      local kids = xml.elements(assert(xml.parse(res.body)))
      assert.equal(2, #kids)
      -- Converted from JSON: what notify.lua wrote in XML for the other
      -- subscription, but for its callbackData and link.
      local structure = require("support.structure")
      local converted = structure.xml(xml.serialize(kids[1]))
      local native = structure.xml(rows[2].body)
      assert.equal("{" .. notify.NS .. "}movieNotification", converted.name)
      assert.same({ "s1", "s2" }, { converted.children[1].text, native.children[1].text })
      assert.equal("MovieSubscription", converted.children[#converted.children].attrs.rel)
      converted.children[1].text = "s2"
      converted.children[#converted.children].attrs.href = native.children[#native.children].attrs.href
      assert.same(native, converted)
      core.hub.answered(true)
    end)
  end)
end)
