local router = require("router")

local function h(name)
  return function()
    return name
  end
end

describe("router", function()
  local r
  before_each(function()
    r = router.new()
    r:add("GET", "/movies/v1/movies", h("list"))
    r:add("POST", "/movies/v1/movies", h("create"))
    r:add("GET", "/movies/v1/movies/{movieId}", h("read"))
    r:add("DELETE", "/movies/v1/movies/{movieId}", h("delete"))
    r:add("PATCH", "/movies/v1/movies/{movieId}", h("patch"))
    r:add("PUT", "/movies/v1/movies/{movieId}", h("replace"))
    r:add("GET", "/nc/v1/{userId}/channels/{channelId}", h("channel"))
  end)

  it("finds a literal route with no params", function()
    local handler, params = r:match("GET", "/movies/v1/movies")
    assert.equal("list", handler())
    assert.same({}, params)
  end)

  it("captures path parameters", function()
    local handler, params = r:match("GET", "/movies/v1/movies/42")
    assert.equal("read", handler())
    assert.same({ movieId = "42" }, params)
  end)

  it("percent-decodes captured segments after splitting", function()
    local handler, params = r:match("GET", "/nc/v1/tel%3A%2B19585550100/channels/ch%2F1")
    assert.equal("channel", handler())
    assert.same({ userId = "tel:+19585550100", channelId = "ch/1" }, params)
  end)

  it("does not match a capture whose escape is broken", function()
    assert.same({ nil, "no path" }, { r:match("GET", "/nc/v1/tel%3/channels/x") })
  end)

  it("does not decode literal segments", function()
    assert.same({ nil, "no path" }, { r:match("GET", "/movies/v1/m%6Fvies") })
  end)

  it("treats a trailing slash as a different path", function()
    assert.same({ nil, "no path" }, { r:match("GET", "/movies/v1/movies/") })
    assert.same({ nil, "no path" }, { r:match("GET", "/movies/v1/movies/42/") })
  end)

  it("matches no empty segment", function()
    assert.same({ nil, "no path" }, { r:match("GET", "/movies//v1/movies") })
    assert.same({ nil, "no path" }, { r:match("GET", "/nc/v1//channels/x") })
  end)

  it("answers no path for unknown, root and relative paths", function()
    assert.same({ nil, "no path" }, { r:match("GET", "/") })
    assert.same({ nil, "no path" }, { r:match("GET", "") })
    assert.same({ nil, "no path" }, { r:match("GET", "movies/v1/movies") })
    assert.same({ nil, "no path" }, { r:match("GET", "/movies/v1/movies/1/x") })
    assert.same({ nil, "no path" }, { r:match("GET", "/movies/v1") })
  end)

  it("matches the root pattern \"/\" for \"/\" only", function()
    r:add("GET", "/", h("root"))
    local handler, params = r:match("GET", "/")
    assert.equal("root", handler())
    assert.same({}, params)
    assert.same({ nil, "no path" }, { r:match("GET", "//") })
    assert.same({ nil, "no path" }, { r:match("GET", "") })
    assert.same({ "GET" }, select(3, r:match("POST", "/")))
    -- Every other route still matches as before.
    assert.equal("list", (r:match("GET", "/movies/v1/movies"))())
  end)

  it("answers no method with the path's methods in Allow order", function()
    local handler, kind, allowed = r:match("POST", "/movies/v1/movies/1")
    assert.is_nil(handler)
    assert.equal("no method", kind)
    assert.same({ "GET", "PUT", "PATCH", "DELETE" }, allowed)
    assert.same({ "GET", "POST" }, select(3, r:match("PUT", "/movies/v1/movies")))
  end)

  it("never lists HEAD, and does not match it by itself", function()
    local handler, kind, allowed = r:match("HEAD", "/movies/v1/movies")
    assert.is_nil(handler)
    assert.equal("no method", kind)
    assert.same({ "GET", "POST" }, allowed)
  end)

  it("sorts unknown methods after the usual ones", function()
    local q = router.new()
    q:add("PROPFIND", "/x", h("a"))
    q:add("DELETE", "/x", h("b"))
    q:add("COPY", "/x", h("c"))
    assert.same({ "DELETE", "COPY", "PROPFIND" }, select(3, q:match("GET", "/x")))
  end)

  it("prefers the more specific pattern whatever the order added", function()
    for _, order in ipairs({ { 1, 2 }, { 2, 1 } }) do
      local q = router.new()
      local routes = {
        { "POST", "/nc/v1/{userId}/channels", h("channels") },
        { "POST", "/nc/v1/callbacks/{callbackId}", h("callback") },
      }
      for _, i in ipairs(order) do
        q:add(table.unpack(routes[i]))
      end
      local handler, params = q:match("POST", "/nc/v1/callbacks/channels")
      assert.equal("callback", handler())
      assert.same({ callbackId = "channels" }, params)
      handler, params = q:match("POST", "/nc/v1/alice/channels")
      assert.equal("channels", handler())
      assert.same({ userId = "alice" }, params)
    end
  end)

  it("raises for bugs in the table", function()
    assert.has_error(function() r:add("GET", "/movies/v1/movies", h("again")) end)
    assert.has_error(function() r:add("GET", "movies", h("x")) end)
    assert.has_error(function() r:add("GET", "/a/{b", h("x")) end)
    assert.has_error(function() r:add("GET", "/a//b", h("x")) end)
    assert.has_error(function() r:add("GET", "//", h("x")) end)
    assert.has_error(function() r:add("GET", "/a/", h("x")) end)
    assert.has_error(function() r:add("GET", "/a", "not a function") end)
  end)

  it("binds handlers to an area's ctx", function()
    local ctx = { name = "area" }
    local bind = router.binder(ctx)
    local handler = bind(function(c, req, params)
      return { c.name, req.path, params.id }
    end)
    assert.same({ "area", "/x/1", "1" }, handler({ path = "/x/1" }, { id = "1" }))
  end)
end)
