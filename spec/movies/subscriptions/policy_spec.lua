local policy = require("movies.subscriptions.policy")

describe("movies.subscriptions.policy", function()
  it("defaults to an hour, within a minute and a day, 100 per user", function()
    local p = policy.from_config({})
    assert.same({ subscription_duration_default = 3600,
      subscription_duration_min = 60, subscription_duration_max = 86400,
      max_subscriptions_per_user = 100 }, p)
    assert.same(p, policy.from_config(nil))
  end)

  it("grants the default when none is asked", function()
    assert.equal(3600, policy.duration(policy.from_config({}), nil))
  end)

  it("clamps what is asked to [min, max]", function()
    local p = policy.from_config({})
    assert.equal(60, policy.duration(p, 0))
    assert.equal(60, policy.duration(p, 59))
    assert.equal(60, policy.duration(p, 60))
    assert.equal(7200, policy.duration(p, 7200))
    assert.equal(86400, policy.duration(p, 86400))
    assert.equal(86400, policy.duration(p, 86401))
    assert.equal(86400, policy.duration(p, 2147483647))
  end)

  it("reads the config keys", function()
    local p = policy.from_config({ subscription_duration_default = 30,
      subscription_duration_min = 1, subscription_duration_max = 100 })
    assert.equal(30, policy.duration(p, nil))
    assert.equal(1, policy.duration(p, 0))
    assert.equal(100, policy.duration(p, 1000))
    -- Integral floats, as a Lua config file may write them.
    p = policy.from_config({ subscription_duration_min = 10.0 })
    assert.equal(10, p.subscription_duration_min)
    assert.equal("integer", math.type(p.subscription_duration_min))
    assert.equal(3, policy.from_config({ max_subscriptions_per_user = 3 })
      .max_subscriptions_per_user)
    assert.equal(1, policy.from_config({ max_subscriptions_per_user = 1 })
      .max_subscriptions_per_user)
  end)

  it("refuses a config that makes no sense, in one line", function()
    local bad = {
      { subscription_duration_min = 0 },
      { subscription_duration_min = -1 },
      { subscription_duration_max = "long" },
      { subscription_duration_default = 1.5 },
      { subscription_duration_default = 10 },            -- below min
      { subscription_duration_default = 100000 },        -- above max
      { subscription_duration_min = 200, subscription_duration_max = 100,
        subscription_duration_default = 150 },
    }
    for _, config in ipairs(bad) do
      local ok, err = pcall(policy.from_config, config)
      assert.is_false(ok)
      assert.is_string(err)
      assert.is_nil(err:find("\n"))
      assert.truthy(err:find("subscription_duration", 1, true), err)
    end
  end)

  it("refuses a max_subscriptions_per_user below 1, which would refuse every create", function()
    for _, v in ipairs({ 0, -1, 2.5, "many" }) do
      local ok, err = pcall(policy.from_config, { max_subscriptions_per_user = v })
      assert.is_false(ok)
      assert.is_nil(err:find("\n"))
      assert.truthy(err:find("max_subscriptions_per_user", 1, true), err)
    end
  end)
end)
