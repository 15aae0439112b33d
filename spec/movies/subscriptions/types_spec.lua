local types = require("movies.subscriptions.types")

describe("movies.subscriptions.types", function()
  it("names our own namespace, not an OMA one", function()
    assert.equal("urn:ncserver:xml:movies:1", types.NAMESPACE)
    assert.equal("mv", types.PREFIX)
  end)

  it("gives every element a scalar kind or a type of the schema", function()
    for name, fields in pairs(types.types) do
      local seen = {}
      for _, e in ipairs(fields) do
        assert.is_nil(seen[e.name], name .. "." .. e.name .. " twice")
        seen[e.name] = true
        assert.is_true(types.is_scalar(e.kind) or types.types[e.kind] ~= nil,
          name .. "." .. e.name)
        assert.is_boolean(e.required)
        assert.is_boolean(e.repeatable)
      end
    end
  end)

  it("maps both roots to types", function()
    assert.equal("MovieSubscription", types.roots.movieSubscription)
    assert.equal("MovieSubscriptionList", types.roots.movieSubscriptionList)
    for _, t in pairs(types.roots) do
      assert.is_table(types.fields(t))
    end
  end)

  it("lists the subscription's elements in API.md 3's order", function()
    local names = {}
    for i, e in ipairs(types.fields("MovieSubscription")) do
      names[i] = e.name
    end
    assert.same({ "callbackReference", "filter", "clientCorrelator", "duration",
      "resourceURL" }, names)
    names = {}
    for i, e in ipairs(types.fields("CallbackReference")) do
      names[i] = e.name
    end
    assert.same({ "notifyURL", "callbackData", "notificationFormat" }, names)
  end)

  it("raises for an unknown type", function()
    assert.has_error(function() types.fields("Nope") end)
  end)
end)
