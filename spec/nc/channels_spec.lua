local fixture = require("nc.fixture")
local channels = require("nc.channels")
local store = require("nc.store")

local P = "http://nc.example:8080"
local T0 = fixture.T0

describe("nc.channels", function()
  describe("check_create", function()
    local function check(doc, opts)
      return channels.check_create(doc, opts)
    end
    local function refused(doc, id, variables, opts)
      local values, err = check(doc, opts)
      assert.is_nil(values)
      assert.equal(id, err.id)
      assert.same(variables, err.variables)
      return err
    end

    it("takes what the client asked for", function()
      assert.same({ channel_type = "LongPolling", client_correlator = "123",
        application_tag = "myApp", lifetime = 7200, max_notifications = 1,
        max_wait_time = 0 },
        check({ clientCorrelator = "123", applicationTag = "myApp",
          channelType = "LongPolling", channelLifetime = 7200,
          channelData = { maxNotifications = 1, maxWaitTime = 0 } }))
      assert.same({ channel_type = "WebSockets" }, check({ channelType = "WebSockets" }))
      assert.same({ channel_type = "WebSockets", max_notifications = 5 },
        check({ channelType = "WebSockets", channelData = { maxNotifications = 5 } }))
      assert.same({ channel_type = "LongPolling", lifetime = 0 },
        check({ channelType = "LongPolling", channelLifetime = 0, channelData = {} }))
    end)

    it("caps clientCorrelator and applicationTag at MAX_TAG_CHARS characters", function()
      assert.equal(256, channels.MAX_TAG_CHARS)
      for _, name in ipairs({ "clientCorrelator", "applicationTag" }) do
        refused({ channelType = "LongPolling", [name] = string.rep("x", 257) }, "SVC0002", { name })
        refused({ channelType = "LongPolling", [name] = string.rep("x", 1024 * 1024) },
          "SVC0002", { name })
        -- Characters, not bytes: 256 two-byte characters are 512 bytes.
        local long = string.rep("\u{e9}", 256)
        assert.truthy(check({ channelType = "LongPolling", [name] = long }))
        refused({ channelType = "LongPolling", [name] = long .. "x" }, "SVC0002", { name })
      end
    end)

    it("keeps empty correlators and tags as given", function()
      assert.same({ channel_type = "LongPolling", client_correlator = "",
        application_tag = "" },
        check({ channelType = "LongPolling", clientCorrelator = "", applicationTag = "" }))
    end)

    it("needs a channelType", function()
      refused({}, "SVC0002", { "channelType" })
      refused({ channelType = "" }, "SVC0002", { "channelType" })
      refused({ channelType = 5 }, "SVC0002", { "channelType" })
      refused(nil, "SVC0002", { "notificationChannel" })
    end)

    it("refuses unknown channel types as invalid input", function()
      refused({ channelType = "Carrier Pigeon" }, "SVC0002", { "channelType" })
      refused({ channelType = "longpolling" }, "SVC0002", { "channelType" })
    end)

    it("refuses OMAPush and NativeChannel with POL1023 (OMA NC 7.2.1)", function()
      local err = refused({ channelType = "OMAPush", channelData = { appId = "x" } },
        "POL1023", { "OMAPush", "LongPolling, WebSockets" })
      assert.equal(403, err.status)
      assert.equal("policyException", err.kind)
      refused({ channelType = "NativeChannel" }, "POL1023",
        { "NativeChannel", "LongPolling, WebSockets" })
    end)

    it("offers only LongPolling to forms (Appendix C)", function()
      refused({ channelType = "WebSockets" }, "POL1023", { "WebSockets", "LongPolling" },
        { form = true })
      refused({ channelType = "OMAPush" }, "POL1023", { "OMAPush", "LongPolling" },
        { form = true })
      assert.same({ channel_type = "LongPolling", max_notifications = 3, lifetime = 10 },
        check({ channelType = "LongPolling", maxNotifications = 3, channelLifetime = 10 },
          { form = true }))
    end)

    it("reads a form's top-level maxNotifications as channelData's", function()
      assert.same({ channel_type = "LongPolling", max_notifications = 2, max_wait_time = 4 },
        check({ channelType = "LongPolling", maxNotifications = 2,
          channelData = { maxWaitTime = 4 } }))
      refused({ channelType = "LongPolling", maxNotifications = 2,
        channelData = { maxNotifications = 2 } }, "SVC0002", { "maxNotifications" })
      refused({ channelType = "LongPolling", maxNotifications = 0 }, "SVC0002",
        { "channelData.maxNotifications" })
    end)

    it("refuses what only the server may fill (5.2.2.2, 5.2.2.6)", function()
      refused({ channelType = "LongPolling", callbackURL = "http://x" }, "SVC0002",
        { "callbackURL" })
      refused({ channelType = "LongPolling", resourceURL = "http://x" }, "SVC0002",
        { "resourceURL" })
      refused({ channelType = "WebSockets", channelData = { channelURL = "ws://x" } },
        "SVC0002", { "channelData.channelURL" })
    end)

    it("refuses channel data of another type", function()
      refused({ channelType = "WebSockets", channelData = { maxWaitTime = 5 } },
        "SVC0002", { "channelData.maxWaitTime" })
      refused({ channelType = "LongPolling", channelData = { appId = "a" } },
        "SVC0002", { "channelData.appId" })
      refused({ channelType = "LongPolling", channelData = "x" }, "SVC0002",
        { "channelData" })
    end)

    it("refuses values out of range", function()
      refused({ channelType = "LongPolling", channelLifetime = -1 }, "SVC0002",
        { "channelLifetime" })
      refused({ channelType = "LongPolling", channelLifetime = 1.5 }, "SVC0002",
        { "channelLifetime" })
      refused({ channelType = "LongPolling", channelData = { maxNotifications = 0 } },
        "SVC0002", { "channelData.maxNotifications" })
      refused({ channelType = "WebSockets", channelData = { maxNotifications = -3 } },
        "SVC0002", { "channelData.maxNotifications" })
      refused({ channelType = "LongPolling", channelData = { maxWaitTime = -1 } },
        "SVC0002", { "channelData.maxWaitTime" })
      refused({ channelType = "LongPolling", clientCorrelator = 5 }, "SVC0002",
        { "clientCorrelator" })
    end)
  end)

  describe("check_lifetime", function()
    it("gives the lifetime asked for, or nil for the default", function()
      assert.equal(7200, channels.check_lifetime({ channelLifetime = 7200 }))
      assert.equal(0, channels.check_lifetime({ channelLifetime = 0 }))
      assert.is_nil(channels.check_lifetime({}))
    end)

    it("refuses a negative or non-integer lifetime", function()
      for _, doc in ipairs({ { channelLifetime = -1 }, { channelLifetime = 2.5 } }) do
        local ok, err = channels.check_lifetime(doc)
        assert.is_false(ok)
        assert.same({ "channelLifetime" }, err.variables)
      end
      local ok, err = channels.check_lifetime(nil)
      assert.is_false(ok)
      assert.same({ "notificationChannelLifetime" }, err.variables)
    end)
  end)

  describe("with a store", function()
    local f, ctx, removed, reasons
    before_each(function()
      f = fixture.new()
      ctx = f.ctx
      removed = {}
      reasons = {}
      ctx.on_channel_removed = function(id, reason)
        removed[#removed + 1] = id
        reasons[#reasons + 1] = reason
      end
    end)
    after_each(function()
      f.close()
    end)

    local function create(user, values)
      return channels.create(ctx, user or "tel:+19585550100",
        values or { channel_type = "LongPolling" })
    end

    it("creates a LongPolling channel with the policy's defaults", function()
      local row, created = create()
      assert.is_true(created)
      assert.same({
        channel_id = "id1", callback_id = "id2", user_id = "tel:+19585550100",
        channel_type = "LongPolling", max_notifications = 10, max_wait_time = 30,
        lifetime = 3600, expires_at = T0 + 3600, created_at = T0,
      }, row)
      assert.same(row, store.get(ctx.db, "tel:+19585550100", "id1"))
    end)

    it("clamps what the client asked for to the policy", function()
      local row = create(nil, { channel_type = "LongPolling", lifetime = 10,
        max_notifications = 1000, max_wait_time = 1000, client_correlator = "c",
        application_tag = "t" })
      assert.equal(60, row.lifetime)
      assert.equal(100, row.max_notifications)
      assert.equal(60, row.max_wait_time)
      assert.equal("c", row.client_correlator)
      assert.equal("t", row.application_tag)
    end)

    it("creates WebSockets channels without maxWaitTime", function()
      local row = create(nil, { channel_type = "WebSockets", max_wait_time = 5 })
      assert.is_nil(row.max_wait_time)
      assert.equal(10, row.max_notifications)
    end)

    it("refuses a create past max_channels_per_user with 403 POL0001", function()
      ctx.policy.max_channels_per_user = 2
      create(nil, { channel_type = "LongPolling", client_correlator = "old", lifetime = 60 })
      create()
      local row, err, detail = create()
      assert.is_nil(row)
      assert.equal("POL0001", err.id)
      assert.equal(403, err.status)
      assert.same({ "too many notification channels for this user (limit 2)" }, err.variables)
      assert.is_nil(detail)
      assert.equal(2, f.count("channels"))
      -- A repeat that finds its channel creates nothing: still answered.
      local again, created = create(nil, { channel_type = "LongPolling", client_correlator = "old" })
      assert.is_false(created)
      assert.equal("id1", again.channel_id)
      -- Other users have limits of their own.
      assert.truthy(create("tel:+2"))
      -- Only live channels count: once "old" expired, there is room again.
      f.core.set_time(T0 + 61)
      local _, fresh = create()
      assert.is_true(fresh)
      assert.equal("POL0001", select(2, create()).id)
    end)

    it("rolls the refused create back, keeping the expired channel it would replace", function()
      create(nil, { channel_type = "LongPolling", client_correlator = "old", lifetime = 60 })
      create()
      ctx.policy.max_channels_per_user = 1
      f.core.set_time(T0 + 61)
      local row, err = create(nil, { channel_type = "LongPolling", client_correlator = "old" })
      assert.is_nil(row)
      assert.equal("POL0001", err.id)
      assert.equal(2, f.count("channels"))
      assert.same({}, removed)
    end)

    it("answers a repeated clientCorrelator with the first channel", function()
      local first = create(nil, { channel_type = "LongPolling", client_correlator = "123" })
      local again, created = create(nil, { channel_type = "WebSockets",
        client_correlator = "123", lifetime = 100 })
      assert.is_false(created)
      assert.same(first, again)
      assert.equal(1, f.count("channels"))
      -- Another user's correlator is another namespace.
      local other, created2 = create("tel:+2", { channel_type = "LongPolling",
        client_correlator = "123" })
      assert.is_true(created2)
      assert.are_not.equal(first.channel_id, other.channel_id)
      -- No correlator: every create is new.
      create()
      create()
      assert.equal(4, f.count("channels"))
    end)

    it("replaces an expired channel that holds the same correlator", function()
      local first = create(nil, { channel_type = "LongPolling", client_correlator = "c",
        lifetime = 60 })
      store.enqueue(ctx.db, first.channel_id, "n", "json", "{}", T0)
      f.core.advance(61) -- the timer did not run
      local second, created = create(nil, { channel_type = "LongPolling",
        client_correlator = "c" })
      assert.is_true(created)
      assert.are_not.equal(first.channel_id, second.channel_id)
      assert.same({ first.channel_id }, removed)
      assert.same({ "expired" }, reasons)
      assert.equal(0, f.count("outbox"))
    end)

    it("finds live channels only, and only for their user", function()
      local row = create(nil, { channel_type = "LongPolling", lifetime = 60 })
      assert.same(row, channels.find(ctx, "tel:+19585550100", row.channel_id))
      assert.is_false(channels.find(ctx, "tel:+19585550101", row.channel_id))
      assert.is_false(channels.find(ctx, "tel:+19585550100", "nope"))
      assert.same(row, channels.find_by_callback(ctx, row.callback_id))
      assert.is_false(channels.find_by_callback(ctx, row.channel_id))
      assert.same(row, channels.find_by_id(ctx, row.channel_id))
      assert.is_false(channels.find_by_id(ctx, "nope"))
      f.core.advance(60)
      assert.is_false(channels.find_by_id(ctx, row.channel_id))
      assert.same({ "expired" }, reasons)
    end)

    it("removes an expired channel when it is asked for", function()
      local row = create(nil, { channel_type = "LongPolling", lifetime = 60 })
      store.enqueue(ctx.db, row.channel_id, "n", "json", "{}", T0)
      f.core.advance(59.999)
      assert.truthy(channels.find(ctx, "tel:+19585550100", row.channel_id))
      f.core.advance(0.001)
      assert.is_false(channels.find(ctx, "tel:+19585550100", row.channel_id))
      assert.same({ row.channel_id }, removed)
      assert.same({ "expired" }, reasons)
      assert.equal(0, f.count("channels"))
      assert.equal(0, f.count("outbox"))
    end)

    it("removes an expired channel when its callback is used", function()
      local row = create(nil, { channel_type = "LongPolling", lifetime = 60 })
      f.core.advance(60)
      assert.is_false(channels.find_by_callback(ctx, row.callback_id))
      assert.equal(0, f.count("channels"))
    end)

    it("lists the user's live channels", function()
      local a = create()
      f.core.advance(1)
      local b = create(nil, { channel_type = "WebSockets", lifetime = 60 })
      create("tel:+2")
      local rows = channels.list(ctx, "tel:+19585550100")
      assert.same({ a.channel_id, b.channel_id }, { rows[1].channel_id, rows[2].channel_id })
      f.core.advance(60)
      assert.equal(1, #channels.list(ctx, "tel:+19585550100"))
    end)

    it("removes a channel with its queue and tells the delivery side", function()
      local row = create()
      store.enqueue(ctx.db, row.channel_id, "n", "json", "{}", T0)
      assert.is_true(channels.remove(ctx, row.channel_id))
      assert.is_false(channels.remove(ctx, row.channel_id))
      assert.same({ row.channel_id }, removed)
      assert.same({ "deleted" }, reasons)
      assert.equal(0, f.count("outbox"))
      local other = create()
      channels.remove(ctx, other.channel_id, channels.EXPIRED)
      assert.same({ "deleted", "expired" }, reasons)
    end)

    it("removes every expired channel at once", function()
      create(nil, { channel_type = "LongPolling", lifetime = 60 })
      create(nil, { channel_type = "LongPolling", lifetime = 120 })
      local keep = create(nil, { channel_type = "LongPolling", lifetime = 3600 })
      f.core.advance(120)
      assert.equal(2, channels.remove_expired(ctx))
      assert.same({ "id1", "id3" }, removed)
      assert.same({ "expired", "expired" }, reasons)
      assert.equal(0, channels.remove_expired(ctx))
      assert.truthy(channels.find(ctx, "tel:+19585550100", keep.channel_id))
    end)

    it("refreshes the lifetime from now", function()
      local row = create(nil, { channel_type = "LongPolling", lifetime = 100 })
      f.core.advance(50)
      assert.equal(50, channels.remaining(row, ctx.now()))
      assert.equal(7200, channels.refresh(ctx, row, 7200))
      assert.equal(7200, channels.remaining(row, ctx.now()))
      local stored = store.get(ctx.db, row.user_id, row.channel_id)
      assert.equal(7200, stored.lifetime)
      assert.equal(T0 + 50 + 7200, stored.expires_at)
      -- No lifetime asked: the default applies (5.2.2.14).
      assert.equal(3600, channels.refresh(ctx, row, nil))
      assert.equal(86400, channels.refresh(ctx, row, 1000000000))
      channels.remove(ctx, row.channel_id)
      assert.is_false(channels.refresh(ctx, row, 60))
    end)

    it("counts the remaining lifetime in whole seconds, rounded up", function()
      local row = create(nil, { channel_type = "LongPolling", lifetime = 60 })
      assert.equal(60, channels.remaining(row, T0))
      assert.equal(60, channels.remaining(row, T0 + 0.001))
      assert.equal(1, channels.remaining(row, T0 + 59.5))
      assert.equal(0, channels.remaining(row, T0 + 60))
      assert.equal(0, channels.remaining(row, T0 + 600))
      assert.is_true(math.type(channels.remaining(row, T0 + 0.5)) == "integer")
    end)

    it("passes storage failures on", function()
      ctx.db.fail_with("disk full")
      local row, err, detail = create()
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      assert.equal("disk full", detail)
      row, err = channels.find(ctx, "u", "c")
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      assert.is_nil((channels.remove_expired(ctx)))
      ctx.db.fail_with(nil)
      assert.equal(0, f.count("channels"))
    end)

    it("rolls back a create whose insert fails", function()
      create(nil, { channel_type = "LongPolling", client_correlator = "c", lifetime = 60 })
      f.core.advance(61)
      -- A live channel already holds the callback_id the next create
      -- will draw: its insert fails after the expired channel was deleted.
      ctx.db.exec("INSERT INTO channels (channel_id, user_id, channel_type,"
        .. " max_notifications, max_wait_time, callback_id, lifetime, expires_at,"
        .. " created_at) VALUES ('other', 'u', 'LongPolling', 1, 1, 'taken', 60, ?, ?)",
        T0 + 1000, T0)
      ctx.random_id = function()
        return "taken"
      end
      local row, err = create(nil, { channel_type = "LongPolling", client_correlator = "c" })
      assert.is_nil(row)
      assert.equal("SVC2001", err.id)
      -- The expired channel is still there (rolled back), and no hook ran.
      assert.equal(2, f.count("channels"))
      assert.same({}, removed)
    end)
  end)

  it("names a channel in log lines by the start of its id only", function()
    assert.equal("id1", channels.label("id1"))
    assert.equal("abcdefgh", channels.label("abcdefgh"))
    assert.equal("Xy3_-abc...", channels.label("Xy3_-abcdefghijklmnopqr"))
  end)

  describe("representations", function()
    local row = {
      channel_id = "ch123", user_id = "tel:+19585550100", channel_type = "LongPolling",
      client_correlator = "123", application_tag = "myApp", max_notifications = 1,
      max_wait_time = 30, callback_id = "cbu111", lifetime = 7200,
      expires_at = T0 + 7200, created_at = T0,
    }

    it("represents a LongPolling channel as in 6.1.5.1.2", function()
      assert.same({
        clientCorrelator = "123",
        applicationTag = "myApp",
        channelType = "LongPolling",
        channelData = {
          channelURL = P .. "/notificationchannel/v1/tel%3A%2B19585550100/channels/ch123/notifications",
          maxNotifications = 1,
          maxWaitTime = 30,
        },
        channelLifetime = 7200,
        callbackURL = P .. "/notificationchannel/v1/callbacks/cbu111",
        resourceURL = P .. "/notificationchannel/v1/tel%3A%2B19585550100/channels/ch123",
      }, channels.represent(P, row))
    end)

    it("represents a WebSockets channel as in 6.1.5.6.2, never inventing a correlator", function()
      local ws = {
        channel_id = "ch378", user_id = "acr:pseudonym123", channel_type = "WebSockets",
        max_notifications = 5, callback_id = "cbu112", lifetime = 3600,
        expires_at = T0 + 3600, created_at = T0,
      }
      local value = channels.represent("https://example.com/exampleAPI", ws)
      assert.same({
        channelType = "WebSockets",
        channelData = {
          channelURL = "wss://example.com/exampleAPI/notificationchannel/v1/acr%3Apseudonym123/channels/ch378/ws",
          maxNotifications = 5,
        },
        channelLifetime = 3600,
        callbackURL = "https://example.com/exampleAPI/notificationchannel/v1/callbacks/cbu112",
        resourceURL = "https://example.com/exampleAPI/notificationchannel/v1/acr%3Apseudonym123/channels/ch378",
      }, value)
    end)

    it("represents a list with its own URL, empty too", function()
      local list = channels.represent_list(P, "tel:+19585550100", { row })
      assert.equal(1, #list.notificationChannel)
      assert.equal(P .. "/notificationchannel/v1/tel%3A%2B19585550100/channels", list.resourceURL)
      assert.same({ notificationChannel = {}, resourceURL = P .. "/notificationchannel/v1/u/channels" },
        channels.represent_list(P, "u", {}))
    end)

    it("represents a lifetime", function()
      assert.same({ channelLifetime = 1724 }, channels.represent_lifetime(1724))
    end)
  end)
end)
