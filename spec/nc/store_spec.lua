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
      function() return store.delete(db, "c") end,
      function() return store.set_lifetime(db, "c", 1, 1) end,
      function() return store.expired(db, 0) end,
      function() return store.next_expiry(db) end,
      function() return store.enqueue(db, "c", "r", "json", "{}", 0) end,
      function() return store.queued(db, "c") end,
      function() return store.by_id(db, "c") end,
      function() return store.queued_after(db, "c", 0, 1) end,
      function() return store.dequeue(db, "c", { 1 }) end,
    }) do
      local ok, err, detail = call()
      assert.is_nil(ok)
      assert.equal("SVC2001", err.id)
      assert.equal("disk I/O error", detail)
    end
    db.fail_with(nil)
  end)

  it("binds every value, splicing none into the SQL", function()
    store.insert(db, row({ user_id = "x'); DROP TABLE channels; --" }))
    assert.equal(1, f.count("channels"))
    for _, sql in ipairs(db.statements) do
      assert.is_nil(sql:find("DROP", 1, true), sql)
    end
  end)
end)
