-- Shared set-up for the movies/subscriptions specs: a fake core with the
-- seeded movies and foreign keys on (as core/db.c opens the database), a
-- fake timer on the fake clock (nc/fixture.lua), the app ctx, the
-- subscription area's ctx and the Notification Channel area's ctx (to make
-- channels whose callbackURLs are notifyURLs), and the routes of both areas.
--
--   local fixture = require("movies.subscriptions.fixture")
--   local f = fixture.new({ config = { subscription_duration_min = 1 } })
--   f.ctx           the subscription area's ctx (policy, expiry)
--   f.nc            the Notification Channel area's ctx
--   f.channel(user, lifetime)  a new LongPolling channel row of `user`
--   f.send(method, path, body, headers)  through the route table; a Lua
--                   table body is sent as JSON
--   f.advance(seconds), f.rows(sql, ...), f.count(table), f.close()
local fake_core = require("support.fake_core")
local fake_hub = require("support.fake_hub")
local nc_fixture = require("nc.fixture")
local json = require("codec.json")
local router = require("router")
local channels = require("nc.channels")
local nc_api = require("nc.api")
local nc_urls = require("nc.urls")
local api = require("movies.subscriptions.api")

local M = {}

M.T0 = nc_fixture.T0
M.P = "http://nc.example:8080"
M.USER = "tel:+19585550100"
M.USER_PATH = "tel%3A%2B19585550100"
M.OTHER = "acr:pseudonym123"
M.OTHER_PATH = "acr%3Apseudonym123"

function M.new(opts)
  opts = opts or {}
  local core = fake_core.new({ now = M.T0, public_url = opts.public_url })
  assert(core.db.exec("PRAGMA foreign_keys = ON"))
  local timer = nc_fixture.timer(core)
  local app_ctx = fake_core.ctx(core)
  local config = { channel_lifetime_min = 1 }
  for k, v in pairs(opts.config or {}) do
    config[k] = v
  end
  app_ctx.config = config
  if opts.timer ~= false then
    app_ctx.timer = timer
  end
  app_ctx.hub = fake_hub.new()

  local routes = router.new()
  for _, area in ipairs({ api, nc_api }) do
    for _, r in ipairs(area.routes(app_ctx)) do
      routes:add(r[1], r[2], r[3])
    end
  end
  local f = { core = core, timer = timer, app_ctx = app_ctx, routes = routes,
    ctx = api.context(app_ctx), nc = nc_api.context(app_ctx) }
  f.advance = timer.advance

  -- Starts both areas as app.lua does (expiry timers).
  function f.start()
    api.start(app_ctx)
    nc_api.start(app_ctx)
  end

  function f.channel(user, lifetime)
    local row = assert(channels.create(f.nc, user or M.USER,
      { channel_type = "LongPolling", lifetime = lifetime }))
    return row
  end

  function f.callback_url(row)
    return nc_urls.callback(core.config.public_url, row.callback_id)
  end

  function f.send(method, path, body, headers)
    local h = {}
    for k, v in pairs(headers or {}) do
      h[k:lower()] = v
    end
    if body ~= nil and type(body) ~= "string" then
      body = json.encode(body)
      h["content-type"] = h["content-type"] or "application/json"
    end
    local req = { method = method, path = path, query = "", headers = h, body = body or "" }
    local handler, params, allowed = routes:match(method, path)
    if not handler then
      return { status = params == "no method" and 405 or 404, allowed = allowed }
    end
    return handler(req, params)
  end

  function f.rows(sql, ...)
    return assert(core.db.query(sql, ...))
  end

  function f.count(tbl)
    return f.rows("SELECT count(*) AS n FROM " .. tbl)[1].n
  end

  function f.close()
    f.ctx.expiry:stop()
    core.db.close()
  end
  return f
end

return M
