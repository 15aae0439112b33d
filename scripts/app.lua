-- The entry point core/script.h loads: app.handle(req) -> res, and the
-- events of held connections: ws_open, ws_message, gone, written.
--
-- This is the only module that touches `core` (package.loaded.core, put
-- there by the C side, or by a spec's fake): it packs what handlers need
-- into one ctx and builds the route table from each area's routes(ctx).
local core = require("core")
local errors = require("codec.errors")
local rep = require("codec.representation")
local router = require("router")
local health = require("health")
local movies = require("movies.api")
local movie_subscriptions = require("movies.subscriptions.api")
local nc = require("nc.api")
local web = require("web")
local nc_policy = require("nc.policy")
local subscription_policy = require("movies.subscriptions.policy")
local policy_values = require("policy_values")

local M = {}

-- Areas whose routes(ctx) make up the table. Adding an area (movie
-- subscriptions) is one line here. An area may also have start(ctx),
-- called once after every route is in place (nc/ sets its expiry timer).
local AREAS = { health, movies, movie_subscriptions, nc, web }

local function build_ctx()
  -- Every URL we hand out is public_url + an absolute path, so a
  -- configured trailing slash must not double up.
  local public_url = tostring(core.config.public_url or ""):gsub("/+$", "")
  return {
    db = core.db,
    now = core.now,
    log = core.log,
    random_id = core.random_id,
    -- nil under a spec's fake core that has no timers: areas then do
    -- without (nc/expiry.lua relies on its access checks alone).
    timer = core.timer,
    -- The connections held open under a key (parked long polls,
    -- WebSockets). nil under a spec's fake core without one: nothing is
    -- then pushed, and parked polls end at their timeout.
    hub = core.hub,
    config = core.config,
    public_url = public_url,
  }
end

local function build_routes(ctx)
  local r = router.new()
  for _, area in ipairs(AREAS) do
    for _, route in ipairs(area.routes(ctx)) do
      r:add(route[1], route[2], route[3])
    end
  end
  return r
end

-- The config keys the core passes on as they are (core/main.c); every
-- other key of core.config is a policy key some area reads.
local CORE_CONFIG_KEYS = {
  public_url = true, listen = true, db = true, scripts = true, sql = true,
  web = true,
}

-- A misspelt key in the --config file stops the server at start (exit 2,
-- one line) instead of leaving the setting at its default unnoticed.
policy_values.check_known(core.config, {
  CORE_CONFIG_KEYS, nc_policy.DEFAULTS, subscription_policy.DEFAULTS,
})

local ctx = build_ctx()
-- A movie change wakes the channels of the outbox rows it queued
-- (movies/notify.lua) through the nc area's delivery, which feeds them to
-- their clients in time-bounded slices (nc/delivery.lua, wake_range).
ctx.wake_outbox = function(first_seq, last_seq)
  nc.context(ctx).delivery:wake_range(first_seq, last_seq)
end
local routes = build_routes(ctx)
for _, area in ipairs(AREAS) do
  if area.start then
    area.start(ctx)
  end
end

function M.handle(req)
  -- RFC 7231 4.3.2: HEAD is GET without the body; the core drops the body
  -- and keeps its Content-Length.
  local method = req.method == "HEAD" and "GET" or req.method
  local handler, params, allowed = routes:match(method, req.path)
  if handler then
    return handler(req, params)
  end
  -- These errors come in the format Accept asks for, as every handler's
  -- do (a client of the NC API that accepts only XML gets an XML
  -- requestError, 6.1.5.7); JSON when Accept names nothing we make, since
  -- a 404 or 405 must not turn into a 406 that hides what went wrong.
  local format = rep.negotiate(req.headers and req.headers.accept) or "json"
  if params == "no method" then
    -- RFC 7231 6.5.5 and every "405" of OMA NC 6: Allow lists the methods
    -- the resource has, exactly as the route table has them.
    local allow = table.concat(allowed, ", ")
    return rep.error_response(errors.new("SVC3001", req.method, allow), format,
      { Allow = allow })
  end
  return rep.error_response(errors.new("SVC3000", req.path), format)
end

-- Events of held connections (core/script.h). Only the Notification
-- Channel area holds connections (the channel id is the key), so they go
-- straight to it.
function M.ws_open(key, id)
  nc.ws_open(ctx, key, id)
end

function M.ws_message(key, id, text)
  nc.ws_message(ctx, key, id, text)
end

function M.gone(key, id, why, code)
  nc.gone(ctx, key, id, why, code)
end

function M.written(token, ok)
  nc.written(ctx, token, ok)
end

return M
