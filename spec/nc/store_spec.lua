local fixture = require("nc.fixture")
local store = require("nc.store")

describe("nc.store", function()
  local f, db
  before_each(function()
    f = fixture.new()
    db = f.core.db
  end)
  after_each(function()
    f.close()
  end)

  local function row(over)
    local r = {
      channel_id = "ch1", user_id = "tel:+1", channel_type = "LongPolling",
      client_correlator = "c1", application_tag = "app",
      max_notifications = 5, max_wait_time = 30, callback_id = "cb1",
      lifetime = 60, expires_at = fixture.T0 + 60, created_at = fixture.T0,
    }
    for k, v in pairs(over or {}) do
      r[k] = v
    end
    return r
  end

  it("inserts and reads back a channel by owner and id", function()
    assert.is_true(store.insert(db, row()))
    local got = store.get(db, "tel:+1", "ch1")
    assert.same(row(), got)
    assert.is_false(store.get(db, "tel:+2", "ch1"))
    assert.is_false(store.get(db, "tel:+1", "ch2"))
  end)

  it("finds a channel by callbackId and by correlator", function()
    assert.is_true(store.insert(db, row()))
    assert.equal("ch1", store.by_callback(db, "cb1").channel_id)
    assert.is_false(store.by_callback(db, "ch1"))
    assert.equal("ch1", store.by_correlator(db, "tel:+1", "c1").channel_id)
    assert.is_false(store.by_correlator(db, "tel:+2", "c1"))
  end)

  it("stores WebSockets channels without maxWaitTime", function()
    local r = row({ channel_type = "WebSockets" })
    r.max_wait_time, r.client_correlator, r.application_tag = nil, nil, nil
    assert.is_true(store.insert(db, r))
    local got = store.get(db, "tel:+1", "ch1")
    assert.is_nil(got.max_wait_time)
    assert.is_nil(got.client_correlator)
    assert.is_nil(got.application_tag)
  end)

  it("refuses rows the API could not have made", function()
    local bad = {
      { channel_type = "OMAPush" },
      { max_notifications = 0 },
      { max_wait_time = -1 },
      { lifetime = 0 },
      { user_id = "" },
      { channel_type = "WebSockets" }, -- with a maxWaitTime
    }
    for _, over in ipairs(bad) do
      local ok, err, detail = store.insert(db, row(over))
      assert.is_nil(ok)
      assert.equal("SVC2001", err.id)
      assert.is_string(detail)
    end
  end)

  it("keeps one correlator per user, any number without one", function()
    assert.is_true(store.insert(db, row()))
    assert.is_nil(store.insert(db, row({ channel_id = "ch2", callback_id = "cb2" })))
    assert.is_true(store.insert(db, row({ channel_id = "ch3", callback_id = "cb3",
      user_id = "tel:+2" })))
    local a, b = row({ channel_id = "ch4", callback_id = "cb4" }),
      row({ channel_id = "ch5", callback_id = "cb5" })
    a.client_correlator, b.client_correlator = nil, nil
    assert.is_true(store.insert(db, a))
    assert.is_true(store.insert(db, b))
  end)

  it("lists a user's live channels in creation order, even within one millisecond", function()
    store.insert(db, row({ channel_id = "z", callback_id = "1", client_correlator = "1" }))
    store.insert(db, row({ channel_id = "dead", callback_id = "4", client_correlator = "4",
      expires_at = fixture.T0 }))
    store.insert(db, row({ channel_id = "a", callback_id = "2", client_correlator = "2" }))
    store.insert(db, row({ channel_id = "m", callback_id = "3", client_correlator = "3",
      created_at = fixture.T0 + 1 }))
    store.insert(db, row({ channel_id = "other", callback_id = "5", user_id = "tel:+2" }))
    local ids = {}
    for i, r in ipairs(store.list(db, "tel:+1", fixture.T0)) do
      ids[i] = r.channel_id
    end
    assert.same({ "z", "a", "m" }, ids)
    assert.same({}, store.list(db, "nobody", fixture.T0))
  end)

  it("counts a user's live channels", function()
    store.insert(db, row({ channel_id = "a", callback_id = "1", client_correlator = "1" }))
    store.insert(db, row({ channel_id = "b", callback_id = "2", client_correlator = "2" }))
    store.insert(db, row({ channel_id = "dead", callback_id = "3", client_correlator = "3",
      expires_at = fixture.T0 }))
    store.insert(db, row({ channel_id = "other", callback_id = "4", user_id = "tel:+2" }))
    assert.equal(2, store.count_live(db, "tel:+1", fixture.T0))
    assert.equal(3, store.count_live(db, "tel:+1", fixture.T0 - 1))
    assert.equal(0, store.count_live(db, "tel:+1", fixture.T0 + 60))
    assert.equal(0, store.count_live(db, "nobody", fixture.T0))
  end)

  it("counts a channel's queued notifications up to a limit", function()
    store.insert(db, row())
    store.insert(db, row({ channel_id = "ch2", callback_id = "cb2", client_correlator = "x" }))
    assert.equal(0, store.count_queued(db, "ch1", 3))
    for _ = 1, 5 do
      store.enqueue(db, "ch1", "aNotification", "json", "{}", fixture.T0)
    end
    store.enqueue(db, "ch2", "aNotification", "json", "{}", fixture.T0)
    assert.equal(5, store.count_queued(db, "ch1", 10))
    assert.equal(3, store.count_queued(db, "ch1", 3))
    assert.equal(1, store.count_queued(db, "ch2", 3))
    assert.equal(0, store.count_queued(db, "nope", 3))
  end)

  it("counts queued notifications through the outbox_channel index alone", function()
    -- A scan of the table, or a read of each row, would make the check of
    -- every callback POST cost as much as the queue is long.
    local sql
    local query = db.query
    db.query = function(text, ...)
      sql = text
      return query(text, ...)
    end
    store.count_queued(db, "ch1", 3)
    db.query = query
    local plan = f.rows("EXPLAIN QUERY PLAN " .. sql, "ch1", 3)
    local text = {}
    for _, r in ipairs(plan) do
      text[#text + 1] = r.detail
    end
    text = table.concat(text, "\n")
    assert.truthy(text:find("USING COVERING INDEX outbox_channel (channel_id=?)", 1, true), text)
  end)

  it("deletes a channel with its queued notifications", function()
    store.insert(db, row())
    store.insert(db, row({ channel_id = "ch2", callback_id = "cb2", client_correlator = "x" }))
    assert.equal(1, store.enqueue(db, "ch1", "aNotification", "json", "{}", fixture.T0))
    assert.equal(2, store.enqueue(db, "ch2", "aNotification", "json", "{}", fixture.T0))
    assert.is_true(store.delete(db, "ch1"))
    assert.is_false(store.delete(db, "ch1"))
    assert.same({}, store.queued(db, "ch1"))
    assert.equal(1, #store.queued(db, "ch2"))
  end)

  it("queues notifications in order, and only for existing channels", function()
    store.insert(db, row())
    local s1 = store.enqueue(db, "ch1", "first", "json", '{"first":{}}', fixture.T0)
    local s2 = store.enqueue(db, "ch1", "second", "xml", "<second/>", fixture.T0 + 1)
    assert.is_true(s2 > s1)
    local q = store.queued(db, "ch1")
    assert.same({ "first", "second" }, { q[1].root, q[2].root })
    assert.same({ "json", "xml" }, { q[1].format, q[2].format })
    assert.equal("<second/>", q[2].body)
    assert.equal(1, #store.queued(db, "ch1", 1))
    local ok, err = store.enqueue(db, "nochannel", "x", "json", "{}", fixture.T0)
    assert.is_nil(ok)
    assert.equal("SVC2001", err.id)
    assert.is_nil(store.enqueue(db, "ch1", "x", "yaml", "", fixture.T0))
  end)

  it("finds a channel by id alone, whoever owns it", function()
    store.insert(db, row())
    assert.same(row(), store.by_id(db, "ch1"))
    assert.is_false(store.by_id(db, "nope"))
  end)

  it("reads the queue after a seq, up to a limit", function()
    store.insert(db, row())
    local seqs = {}
    for i = 1, 4 do
      seqs[i] = store.enqueue(db, "ch1", "n" .. i, "json", "{}", fixture.T0)
    end
    local q = store.queued_after(db, "ch1", seqs[1], 2)
    assert.same({ "n2", "n3" }, { q[1].root, q[2].root })
    assert.equal(3, #store.queued_after(db, "ch1", seqs[1]))
    assert.equal(4, #store.queued_after(db, "ch1", 0))
    assert.same({}, store.queued_after(db, "ch1", seqs[4], 10))
  end)

  it("dequeues delivered notifications of one channel, counting what went", function()
    store.insert(db, row())
    store.insert(db, row({ channel_id = "ch2", callback_id = "cb2", client_correlator = "x" }))
    local a = store.enqueue(db, "ch1", "a", "json", "{}", fixture.T0)
    local b = store.enqueue(db, "ch1", "b", "json", "{}", fixture.T0)
    local c = store.enqueue(db, "ch2", "c", "json", "{}", fixture.T0)
    assert.equal(1, store.dequeue(db, "ch1", { a, c }))
    assert.equal(0, store.dequeue(db, "ch1", { a }))
    assert.equal(0, store.dequeue(db, "ch1", {}))
    assert.same({ b }, { store.queued(db, "ch1")[1].seq })
    assert.equal(1, #store.queued(db, "ch2"))
  end)

  it("never reuses a seq, even after the newest row is gone", function()
    store.insert(db, row())
    local s1 = store.enqueue(db, "ch1", "a", "json", "{}", fixture.T0)
    db.exec("DELETE FROM outbox WHERE seq = ?", s1)
    assert.is_true(store.enqueue(db, "ch1", "a", "json", "{}", fixture.T0) > s1)
  end)

  it("sets the lifetime and finds what expired and what expires next", function()
    assert.is_false(store.next_expiry(db))
    store.insert(db, row({ expires_at = fixture.T0 + 10 }))
    store.insert(db, row({ channel_id = "ch2", callback_id = "cb2", client_correlator = "2",
      expires_at = fixture.T0 + 5 }))
    assert.equal(fixture.T0 + 5, store.next_expiry(db))
    assert.same({}, store.expired(db, fixture.T0 + 4.999))
    assert.same({ "ch2" }, store.expired(db, fixture.T0 + 5))
    assert.same({ "ch2", "ch1" }, store.expired(db, fixture.T0 + 10))
    assert.is_true(store.set_lifetime(db, "ch2", 100, fixture.T0 + 100))
    assert.is_false(store.set_lifetime(db, "nope", 100, fixture.T0 + 100))
    local got = store.get(db, "tel:+1", "ch2")
    assert.equal(100, got.lifetime)
    assert.equal(fixture.T0 + 100, got.expires_at)
    assert.equal(fixture.T0 + 10, store.next_expiry(db))
  end)

  it("reports storage failures as SVC2001 with the detail", function()
    db.fail_with("disk I/O error")
    for _, call in ipairs({
      function() return store.insert(db, row()) end,
      function() return store.get(db, "u", "c") end,
      function() return store.by_callback(db, "c") end,
      function() return store.by_correlator(db, "u", "c") end,
      function() return store.list(db, "u", 0) end,
      function() return store.count_live(db, "u", 0) end,
      function() return store.count_queued(db, "c", 1) end,
      function() return store.delete(db, "c") end,
      function() return store.set_lifetime(db, "c", 1, 1) end,
      function() return store.expired(db, 0) end,
      function() return store.next_expiry(db) end,
      function() return store.enqueue(db, "c", "r", "json", "{}", 0) end,
      function() return store.queued(db, "c") end,
      function() return store.by_id(db, "c") end,
      function() return store.queued_after(db, "c", 0, 1) end,
      function() return store.dequeue(db, "c", { 1 }) end,
      function() return store.add_template(db, { json = { "", "", "" }, xml = { "", "", "" } }, 0) end,
      function() return store.drop_template(db, 1) end,
      function() return store.sweep_templates(db, 0, 10) end,
    }) do
      local ok, err, detail = call()
      assert.is_nil(ok)
      assert.equal("SVC2001", err.id)
      assert.equal("disk I/O error", detail)
    end
    db.fail_with(nil)
  end)

  describe("template rows (sql/005_outbox_templates.sql)", function()
    local PIECES = {
      json = { '{"aNotification":{', '"n":1,"href":"http://x', '"}}' },
      xml = { '<a:aNotification xmlns:a="urn:a">', '<n>1</n><href>http://x', "</href></a:aNotification>" },
    }

    -- A row as a fan-out writes it: a template and its two parts.
    local function fan_row(channel_id, format, template_id, fill_1, fill_2)
      local changes, seq = db.exec("INSERT INTO outbox (channel_id, root, format, template_id,"
        .. " fill_1, fill_2, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        channel_id, "aNotification", format, template_id, fill_1, fill_2, fixture.T0)
      return changes and seq, seq
    end

    before_each(function()
      store.insert(db, row())
      store.insert(db, row({ channel_id = "ch2", callback_id = "cb2", client_correlator = "x" }))
    end)

    it("reads a fan-out row's body put together, in its own format", function()
      local t = assert(store.add_template(db, PIECES, fixture.T0))
      local before = store.enqueue(db, "ch1", "cbNotification", "json", '{"cbNotification":{}}',
        fixture.T0)
      assert(fan_row("ch1", "json", t, '"cb":"d",', "/a"))
      assert(fan_row("ch1", "xml", t, "", "/b"))
      local after = store.enqueue(db, "ch1", "cbNotification", "xml", "<cbNotification/>",
        fixture.T0)
      local q = store.queued(db, "ch1")
      assert.same({
        { seq = before, root = "cbNotification", format = "json", body = '{"cbNotification":{}}',
          created_at = fixture.T0 },
        { seq = before + 1, root = "aNotification", format = "json",
          body = '{"aNotification":{"cb":"d","n":1,"href":"http://x/a"}}', created_at = fixture.T0 },
        { seq = before + 2, root = "aNotification", format = "xml",
          body = '<a:aNotification xmlns:a="urn:a"><n>1</n><href>http://x/b</href></a:aNotification>',
          created_at = fixture.T0 },
        { seq = after, root = "cbNotification", format = "xml", body = "<cbNotification/>",
          created_at = fixture.T0 },
      }, q)
      assert.same({ q[2], q[3], q[4] }, store.queued_after(db, "ch1", before, 10))
      assert.same({ q[3] }, store.queued_after(db, "ch1", before + 1, 1))
    end)

    -- The query plan of the last statement run that starts with `prefix`,
    -- bound to `...`, as one text.
    local function plan(prefix, ...)
      for i = #db.statements, 1, -1 do
        local sql = db.statements[i]
        if sql:sub(1, #prefix) == prefix then
          local lines = {}
          for _, r in ipairs(f.rows("EXPLAIN QUERY PLAN " .. sql, ...)) do
            lines[#lines + 1] = r.detail
          end
          return table.concat(lines, "\n")
        end
      end
      error("no statement " .. prefix)
    end

    it("reads the queue through outbox_channel, the template by its key", function()
      store.queued_after(db, "ch1", 0, 10)
      local after = plan("SELECT", "ch1", 0, 10)
      store.queued(db, "ch1", 10)
      local all = plan("SELECT", "ch1", 10)
      for _, text in ipairs({ after, all }) do
        assert.matches("SEARCH o USING INDEX outbox_channel %(channel_id=%?", text)
        assert.matches("SEARCH t USING INTEGER PRIMARY KEY %(rowid=%?%)", text)
        -- In seq order as the index gives it, no sort.
        assert.is_nil(text:find("TEMP B-TREE", 1, true), text)
      end
      assert.matches("seq>%?", after)
    end)

    it("holds either a body or a template with both parts, never both or neither", function()
      local t = assert(store.add_template(db, PIECES, fixture.T0))
      local bad = {
        { nil, nil, nil, nil },          -- nothing
        { "{}", t, "", "/a" },           -- both
        { nil, t, nil, "/a" },           -- no fill_1
        { nil, t, "", nil },             -- no fill_2
        { "{}", nil, "", nil },          -- a part without a template
        { nil, t + 1, "", "/a" },        -- a template that does not exist
      }
      for i, b in ipairs(bad) do
        local changes = db.exec("INSERT INTO outbox (channel_id, root, format, body,"
          .. " template_id, fill_1, fill_2, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          "ch1", "r", "json", b[1], b[2], b[3], b[4], fixture.T0)
        assert.is_nil(changes, "row " .. i)
      end
      assert.equal(0, f.count("outbox"))
    end)

    it("keeps a template while a row refers to it", function()
      local t = assert(store.add_template(db, PIECES, fixture.T0))
      assert(fan_row("ch1", "json", t, "", "/a"))
      assert.is_false(store.drop_template(db, t))
      -- Not even a plain DELETE can: the foreign key refuses.
      assert.is_nil(db.exec("DELETE FROM outbox_templates WHERE template_id = ?", t))
      assert.equal(1, f.count("outbox_templates"))
      local u = assert(store.add_template(db, PIECES, fixture.T0))
      assert.is_true(store.drop_template(db, u))
      assert.equal(1, f.count("outbox_templates"))
    end)

    it("sweeps the templates no row refers to any more, and only those", function()
      local t1 = assert(store.add_template(db, PIECES, fixture.T0))
      local t2 = assert(store.add_template(db, PIECES, fixture.T0))
      local t3 = assert(store.add_template(db, PIECES, fixture.T0))
      local a = fan_row("ch1", "json", t1, "", "/a")
      fan_row("ch2", "json", t1, "", "/b")
      fan_row("ch2", "xml", t2, "", "/c")
      assert.same({ 1, false }, { store.sweep_templates(db, 0, 10) }) -- t3: no rows
      -- Delivered: t1 still has ch2's row.
      assert.equal(1, store.dequeue(db, "ch1", { a }))
      assert.same({ 0, false }, { store.sweep_templates(db, 0, 10) })
      -- The channel goes, and its rows with it (ON DELETE CASCADE).
      assert.is_true(store.delete(db, "ch2"))
      assert.same({ 2, false }, { store.sweep_templates(db, 0, 10) })
      assert.equal(0, f.count("outbox_templates"))
      assert.is_not_nil(t3)
    end)

    it("sweeps in steps of at most `limit` templates, from where the last stopped", function()
      local ids = {}
      for i = 1, 5 do
        ids[i] = assert(store.add_template(db, PIECES, fixture.T0))
      end
      fan_row("ch1", "json", ids[2], "", "/a")
      fan_row("ch1", "json", ids[5], "", "/a")
      local n, after = store.sweep_templates(db, 0, 2)
      assert.same({ 1, ids[2] }, { n, after }) -- ids 1, 2 looked at
      n, after = store.sweep_templates(db, after, 2)
      assert.same({ 2, ids[4] }, { n, after }) -- ids 3, 4
      n, after = store.sweep_templates(db, after, 2)
      assert.same({ 0, false }, { n, after })  -- id 5, the last
      local left = {}
      for _, r in ipairs(f.rows("SELECT template_id FROM outbox_templates ORDER BY 1")) do
        left[#left + 1] = r.template_id
      end
      assert.same({ ids[2], ids[5] }, left)
    end)

    it("sweeps through the primary key and outbox_template, never a scan", function()
      assert(store.add_template(db, PIECES, fixture.T0))
      store.sweep_templates(db, 0, 10)
      local text = plan("DELETE FROM outbox_templates", 0, 10)
      assert.matches("SEARCH outbox_templates USING INTEGER PRIMARY KEY", text)
      assert.matches("SEARCH o USING COVERING INDEX outbox_template %(template_id=%?%)", text)
      assert.is_nil(text:find("SCAN", 1, true), text)
      text = plan("SELECT max(template_id)", 0, 10)
      assert.matches("SEARCH outbox_templates USING INTEGER PRIMARY KEY %(rowid>%?%)", text)
    end)
  end)

  it("binds every value, splicing none into the SQL", function()
    store.insert(db, row({ user_id = "x'); DROP TABLE channels; --" }))
    assert.equal(1, f.count("channels"))
    for _, sql in ipairs(db.statements) do
      assert.is_nil(sql:find("DROP", 1, true), sql)
    end
  end)
end)
