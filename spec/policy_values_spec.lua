local values = require("policy_values")

describe("policy_values", function()
  it("reads integers over their defaults and refuses anything else", function()
    local p = values.integers({ a = 1, b = 2 }, { a = "7" })
    assert.same({ a = 7, b = 2 }, p)
    assert.same({ a = 1 }, values.integers({ a = 1 }, nil))
    for _, bad in ipairs({ -1, 1.5, "x" }) do
      local ok, err = pcall(values.integers, { a = 1 }, { a = bad })
      assert.is_false(ok)
      assert.matches("config a must be a non%-negative integer", err)
    end
  end)

  it("checks a lifetime triple", function()
    values.check_lifetime({ t_min = 1, t_default = 2, t_max = 3 }, "t")
    assert.error_matches(function()
      values.check_lifetime({ t_min = 0, t_default = 2, t_max = 3 }, "t")
    end, "config: t_min must be at least 1")
    assert.error_matches(function()
      values.check_lifetime({ t_min = 3, t_default = 2, t_max = 3 }, "t")
    end, "need t_min <= t_default <= t_max")
  end)

  it("names the first key no table knows", function()
    values.check_known({ a = 1, b = 2 }, { { a = 0 }, { b = 0, c = 0 } })
    values.check_known(nil, { {} })
    assert.error_matches(function()
      values.check_known({ a = 1, zz = 1, yy = 2 }, { { a = 0 } })
    end, 'config: unknown key "yy"')
    -- false is a value: a known key whose default is false still counts.
    values.check_known({ f = 1 }, { { f = false } })
  end)

  it("refuses a cap below 1, naming the key", function()
    values.check_at_least_1({ a = 1, b = 5 }, "a", "b")
    assert.error_matches(function()
      values.check_at_least_1({ a = 1, b = 0 }, "a", "b")
    end, "config: b must be at least 1")
  end)

  it("answers POL0001 once a user has as many as the limit", function()
    assert.is_nil(values.beyond_user_limit(2, 3, "things"))
    for _, n in ipairs({ 3, 4 }) do
      local err = values.beyond_user_limit(n, 3, "things")
      assert.equal("POL0001", err.id)
      assert.equal(403, err.status)
      assert.same({ "too many things for this user (limit 3)" }, err.variables)
    end
  end)

  it("grants the default, or the request clamped", function()
    assert.equal(5, values.grant(nil, 5, 1, 10))
    assert.equal(1, values.grant(0, 5, 1, 10))
    assert.equal(10, values.grant(99, 5, 1, 10))
    assert.equal(7, values.grant(7, 5, 1, 10))
  end)
end)
