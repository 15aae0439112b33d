local policy = require("nc.policy")

describe("nc.policy", function()
  it("has the documented defaults with no config", function()
    local p = policy.from_config({})
    assert.equal(3600, p.channel_lifetime_default)
    assert.equal(60, p.channel_lifetime_min)
    assert.equal(86400, p.channel_lifetime_max)
    assert.equal(10, p.max_notifications_default)
    assert.equal(100, p.max_notifications_max)
    assert.equal(30, p.max_wait_time_default)
    assert.equal(60, p.max_wait_time_max)
    assert.equal(0, p.ws_conncheck_interval)
    assert.equal(100, p.max_channels_per_user)
    assert.equal(1000, p.max_callback_notifications)
    assert.equal(10000, p.max_queued_notifications)
    assert.same(p, policy.from_config(nil))
  end)

  it("reads the per-user channel, per-callback and per-channel queue limits", function()
    local p = policy.from_config({ max_channels_per_user = 3, max_callback_notifications = 7,
      max_queued_notifications = 1 })
    assert.equal(3, p.max_channels_per_user)
    assert.equal(7, p.max_callback_notifications)
    assert.equal(1, p.max_queued_notifications)
  end)

  it("reads each key from the config, ignoring others", function()
    local p = policy.from_config({ channel_lifetime_default = 5,
      channel_lifetime_min = 1, channel_lifetime_max = 10, listen = "x",
      max_notifications_default = 3, max_notifications_max = 3,
      max_wait_time_default = 0, max_wait_time_max = 0 })
    assert.equal(5, p.channel_lifetime_default)
    assert.equal(1, p.channel_lifetime_min)
    assert.equal(10, p.channel_lifetime_max)
    assert.equal(3, p.max_notifications_max)
    assert.equal(0, p.max_wait_time_max)
    assert.is_nil(p.listen)
  end)

  it("reads ws_conncheck_interval, refusing what is no duration", function()
    assert.equal(45, policy.from_config({ ws_conncheck_interval = 45 }).ws_conncheck_interval)
    for _, bad in ipairs({ -1, 1.5, "often" }) do
      local ok, err = pcall(policy.from_config, { ws_conncheck_interval = bad })
      assert.is_false(ok)
      assert.truthy(err:find("ws_conncheck_interval", 1, true), err)
    end
  end)

  it("accepts integral floats, as a config file may write 60.0", function()
    assert.equal(60, policy.from_config({ channel_lifetime_min = 60.0 }).channel_lifetime_min)
  end)

  for _, case in ipairs({
    { { channel_lifetime_min = "soon" }, "channel_lifetime_min" },
    { { channel_lifetime_max = 1.5 }, "channel_lifetime_max" },
    { { max_wait_time_max = -1 }, "max_wait_time_max" },
    { { channel_lifetime_min = 0 }, "at least 1" },
    { { channel_lifetime_default = 30 }, "channel_lifetime_min <=" },
    { { channel_lifetime_default = 90000 }, "channel_lifetime_max" },
    { { max_notifications_default = 0 }, "max_notifications_default" },
    { { max_notifications_max = 5 }, "max_notifications_max" },
    { { max_wait_time_default = 61 }, "max_wait_time_default" },
    { { max_channels_per_user = 0 }, "max_channels_per_user must be at least 1" },
    { { max_channels_per_user = "many" }, "max_channels_per_user" },
    { { max_callback_notifications = 0 }, "max_callback_notifications must be at least 1" },
    { { max_callback_notifications = 2.5 }, "max_callback_notifications" },
    { { max_queued_notifications = 0 }, "max_queued_notifications must be at least 1" },
    { { max_queued_notifications = "lots" }, "max_queued_notifications" },
  }) do
    it("refuses a config that makes no sense: " .. case[2], function()
      local ok, err = pcall(policy.from_config, case[1])
      assert.is_false(ok)
      assert.is_string(err)
      assert.truthy(err:find(case[2], 1, true), err)
      assert.is_nil(err:find("\n"), "one line")
    end)
  end

  describe("granting", function()
    local p = policy.from_config({})

    it("gives the default lifetime when none is asked", function()
      assert.equal(3600, policy.lifetime(p, nil))
    end)

    it("clamps the lifetime asked for to [min, max]", function()
      assert.equal(60, policy.lifetime(p, 0))
      assert.equal(60, policy.lifetime(p, 59))
      assert.equal(60, policy.lifetime(p, 60))
      assert.equal(7200, policy.lifetime(p, 7200))
      assert.equal(86400, policy.lifetime(p, 86400))
      assert.equal(86400, policy.lifetime(p, 2147483647))
    end)

    it("defaults and caps maxNotifications", function()
      assert.equal(10, policy.max_notifications(p, nil))
      assert.equal(1, policy.max_notifications(p, 1))
      assert.equal(100, policy.max_notifications(p, 1000))
    end)

    it("defaults and caps maxWaitTime, keeping zero", function()
      assert.equal(30, policy.max_wait_time(p, nil))
      assert.equal(0, policy.max_wait_time(p, 0))
      assert.equal(45, policy.max_wait_time(p, 45))
      assert.equal(60, policy.max_wait_time(p, 600))
    end)
  end)
end)
