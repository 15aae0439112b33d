local json = require("codec.json")
local router = require("router")
local web = require("web")

local function get(path)
  return { method = "GET", path = path, query = "", headers = {}, body = "" }
end

-- The routes of web.lua in a router of their own, as app.lua builds them.
local function routes()
  local r = router.new()
  for _, route in ipairs(web.routes()) do
    r:add(route[1], route[2], route[3])
  end
  return r
end

-- What the client gets when the core has no file to serve: res itself.
local function assert_not_found(res, path)
  assert.equal(404, res.status)
  assert.equal("application/json", res.headers["Content-Type"])
  local e = json.decode(res.body).requestError.serviceException
  assert.equal("SVC3000", e.messageId)
  assert.same({ path }, e.variables)
end

describe("web", function()
  local r
  before_each(function()
    r = routes()
  end)

  local function handle(path)
    local handler, params = r:match("GET", path)
    assert.is_function(handler)
    return handler(get(path), params)
  end

  it("serves index.html for GET /, with a 404 to fall back on", function()
    local res = handle("/")
    assert.equal("index.html", res.file)
    assert_not_found(res, "/")
  end)

  it("serves the page's assets from /web/{name}", function()
    for _, name in ipairs({ "app.js", "style.css", "index.html", "a-b_c.1.svg" }) do
      local res = handle("/web/" .. name)
      assert.equal(name, res.file)
      assert_not_found(res, "/web/" .. name)
    end
  end)

  it("gives the core the decoded name", function()
    assert.equal("app.js", handle("/web/app%2Ejs").file)
  end)

  describe("names outside the flat web folder", function()
    for _, path in ipairs({ "/web/.hidden", "/web/..", "/web/.", "/web/%2E%2E",
      "/web/..%2Fsql%2F001_schema.sql", "/web/a%2Fb.js", "/web/a%5Cb.js",
      "/web/a%00.js", "/web/%20app.js", "/web/" .. string.rep("a", 256) }) do
      it("answers 404 without a file for " .. path:sub(1, 40), function()
        local res = handle(path)
        assert.is_nil(res.file)
        assert_not_found(res, path)
      end)
    end
  end)

  it("matches nothing deeper, shallower or with a trailing slash", function()
    for _, path in ipairs({ "/web", "/web/", "/web/a/b.js", "/index.html", "//" }) do
      assert.same({ nil, "no path" }, { r:match("GET", path) })
    end
  end)

  it("answers GET only", function()
    assert.same({ nil, "no method", { "GET" } }, { r:match("POST", "/") })
    assert.same({ nil, "no method", { "GET" } }, { r:match("PUT", "/web/app.js") })
  end)

  it("accepts only plain one-segment names as assets", function()
    assert.is_true(web.is_asset("app.js"))
    assert.is_true(web.is_asset("_x"))
    assert.is_false(web.is_asset(""))
    assert.is_false(web.is_asset(".env"))
    assert.is_false(web.is_asset("a/b"))
    assert.is_false(web.is_asset(nil))
  end)
end)
