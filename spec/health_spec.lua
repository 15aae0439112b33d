local fake_core = require("support.fake_core")
local json = require("codec.json")
local health = require("health")

describe("health", function()
  local core, ctx
  before_each(function()
    core = fake_core.new({ seed = false })
    ctx = fake_core.ctx(core)
  end)
  after_each(function()
    core.db.close()
  end)

  it("answers 200 ok when the database answers", function()
    local res = health.check(ctx)
    assert.equal(200, res.status)
    assert.equal("application/json", res.headers["Content-Type"])
    assert.same({ status = "ok" }, json.decode(res.body))
  end)

  it("answers 503 when the database fails", function()
    core.db.fail_with("disk I/O error")
    local res = health.check(ctx)
    assert.equal(503, res.status)
    assert.same({ status = "unavailable" }, json.decode(res.body))
    assert.equal(1, #core.logged("warn", "disk I/O error"))
  end)

  it("answers 503 when the database raises", function()
    ctx.db = { query = function() error("database is closed") end }
    local res = health.check(ctx)
    assert.equal(503, res.status)
    assert.equal(1, #core.logged("warn", "database is closed"))
  end)

  it("answers 503 when the database answers nonsense", function()
    ctx.db = { query = function() return {} end }
    assert.equal(503, health.check(ctx).status)
  end)

  it("routes GET /health only", function()
    local routes = health.routes(ctx)
    assert.equal(1, #routes)
    assert.same({ "GET", "/health" }, { routes[1][1], routes[1][2] })
    assert.equal(200, routes[1][3]({}, {}).status)
  end)
end)
