-- HTTP handlers of the movie subscription resources (API.md 3), base
-- {public_url}/movies/v1:
--
--   /{userId}/subscriptions                   GET list, POST create
--   /{userId}/subscriptions/{subscriptionId}  GET read, DELETE
--
-- Every other method is a 405 whose Allow lists these (the router builds
-- it). Faults, formats and negotiation are the channel API's (API.md 2):
-- JSON or XML in and out, Accept decides (JSON by default, 406 when
-- nothing acceptable), 415 for other bodies, requestError bodies.
--
-- Each handler takes the area's ctx (see M.context) and the request, and
-- returns a response; nothing here reaches for `core` itself.
local errors = require("codec.errors")
local notification = require("codec.notification")
local response = require("http.response")
local notify = require("movies.notify")
local codec = require("movies.subscriptions.codec")
local expiry = require("movies.subscriptions.expiry")
local model = require("movies.subscriptions.model")
local policy = require("movies.subscriptions.policy")
local represent = require("movies.subscriptions.represent")
local types = require("movies.subscriptions.types")
local urls = require("movies.subscriptions.urls")
local validate = require("movies.subscriptions.validate")
local router = require("router")

local M = {}

-- The area's ctx: the app's (db, now, log, random_id, public_url, config,
-- timer) plus policy (from config) and the expiry scheduler. Built once
-- per app ctx, so routes and start share it. Raises on a bad config,
-- which stops the server at start with the reason.
local contexts = setmetatable({}, { __mode = "k" })
function M.context(app_ctx)
  local ctx = contexts[app_ctx]
  if ctx then
    return ctx
  end
  ctx = setmetatable({}, { __index = app_ctx })
  ctx.policy = policy.from_config(app_ctx.config)
  ctx.expiry = expiry.new(ctx, app_ctx.timer)
  contexts[app_ctx] = ctx
  return ctx
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- The response format for `req`, or nil and the 406 to answer (in JSON,
-- since nothing the client accepts can be produced).
local function negotiate(req)
  local format, err = codec.negotiate(req.headers and req.headers.accept)
  if not format then
    return nil, codec.error_response(err, "json")
  end
  return format
end

local function failed(ctx, format, err, detail)
  if detail then
    ctx.log("error", "movie subscriptions storage: " .. tostring(detail))
  end
  return codec.error_response(err, format)
end

-- The live subscription the path names, or nil and the response to give:
-- 404 when there is none for this user.
local function load(ctx, req, params, format)
  local row, err, detail = model.find(ctx, params.userId, params.subscriptionId)
  if row == nil then
    return nil, failed(ctx, format, err, detail)
  end
  if not row then
    return nil, codec.error_response(errors.new("SVC3000", req.path), format)
  end
  return row
end

---------------------------------------------------------------------------
-- Handlers
---------------------------------------------------------------------------

-- GET /{userId}/subscriptions: the user's live subscriptions, oldest
-- first; "movieSubscription": [] when there are none.
function M.list(ctx, req, params)
  local format, res = negotiate(req)
  if not format then
    return res
  end
  local rows, filters, detail = model.list(ctx, params.userId)
  if not rows then
    return failed(ctx, format, filters, detail)
  end
  return codec.response(200, format, "movieSubscriptionList",
    represent.list(ctx.public_url, params.userId, rows, filters))
end

-- POST /{userId}/subscriptions: 201 with Location, or 200 with the
-- existing subscription for a repeated clientCorrelator.
function M.create(ctx, req, params)
  local format, res = negotiate(req)
  if not format then
    return res
  end
  local doc, err = codec.decode(req, "movieSubscription")
  if not doc then
    return codec.error_response(err, format)
  end
  local values
  values, err = validate.create(doc)
  if not values then
    return codec.error_response(err, format)
  end
  local row, created, detail = model.create(ctx, params.userId, values)
  if not row then
    return failed(ctx, format, created, detail)
  end
  local value = represent.subscription(ctx.public_url, row, row.movie_ids)
  if created then
    return codec.response(201, format, "movieSubscription", value,
      { Location = value.resourceURL })
  end
  return codec.response(200, format, "movieSubscription", value)
end

-- GET /{userId}/subscriptions/{subscriptionId}
function M.read(ctx, req, params)
  local format, res = negotiate(req)
  if not format then
    return res
  end
  local row
  row, res = load(ctx, req, params, format)
  if not row then
    return res
  end
  return codec.response(200, format, "movieSubscription",
    represent.subscription(ctx.public_url, row, row.movie_ids))
end

-- DELETE /{userId}/subscriptions/{subscriptionId}: 204. Errors come in
-- the Accept format when there is one; a client that accepts nothing we
-- make still gets its 204, as for a channel's DELETE.
function M.delete(ctx, req, params)
  local format = codec.negotiate(req.headers and req.headers.accept) or "json"
  local row, res = load(ctx, req, params, format)
  if not row then
    return res
  end
  local ok, err, detail = model.remove(ctx, row.subscription_id, model.DELETED)
  if ok == nil then
    return failed(ctx, format, err, detail)
  end
  return response.no_content()
end

---------------------------------------------------------------------------
-- Routes
---------------------------------------------------------------------------

-- The route entries { method, pattern, handler(req, params) }.
--
-- "/movies/v1/{userId}/subscriptions/{id}" has five segments, no movies
-- route does. "/movies/v1/{userId}/subscriptions" has as many as
-- "/movies/v1/movies/{movieId}"; the router prefers the literal, so a user
-- named "movies" cannot list subscriptions. No real userId (tel:, acr:,
-- sip:...) is that word.
function M.routes(app_ctx)
  local ctx = M.context(app_ctx)
  local bind = router.binder(ctx)
  local collection = urls.BASE .. "/{userId}/subscriptions"
  local resource = collection .. "/{subscriptionId}"
  return {
    { "GET", collection, bind(M.list) },
    { "POST", collection, bind(M.create) },
    { "GET", resource, bind(M.read) },
    { "DELETE", resource, bind(M.delete) },
  }
end

-- Called once at start, after the routes: registers the schema of the
-- notifications subscriptions get, so that a long poll asking for the
-- format a notification was not stored in gets it typed, as
-- movies/notify.lua writes that format (movieId a JSON number; the mv
-- namespace, element order and link attributes in XML) rather than by the
-- generic conversion; then removes subscriptions that expired while the
-- server was down and sets the expiry timer for the rest.
function M.start(app_ctx)
  notification.register(notify.ROOT, types)
  M.context(app_ctx).expiry:run()
end

return M
