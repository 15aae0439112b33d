-- HTTP handlers of the Notification Channel management resources (OMA NC
-- 5.1, 6.1, 6.2, 6.4; API.md 2), the channelURLs (6.3 long poll, Appendix
-- I WebSocket) and the callbackURL enablers post to. Base
-- {public_url}/notificationchannel/v1. The events of held connections
-- (core/script.h) go to the area's nc/delivery.lua.
--
-- Each handler takes the area's ctx (see M.context) and the request, and
-- returns a response; bodies are read and written through
-- codec/representation, in the format Accept asks for (JSON by default).
local errors = require("codec.errors")
local notification = require("codec.notification")
local rep = require("codec.representation")
local request = require("http.request")
local response = require("http.response")
local callbacks = require("nc.callbacks")
local channels = require("nc.channels")
local delivery = require("nc.delivery")
local expiry = require("nc.expiry")
local policy = require("nc.policy")
local sweep = require("nc.sweep")
local urls = require("nc.urls")
local websocket = require("nc.websocket")
local router = require("router")

local M = {}

local BASE = urls.BASE

-- The area's ctx: the app's (db, now, log, random_id, public_url, config,
-- timer, hub) plus policy (from config), the expiry scheduler, the
-- delivery side (which sets on_notification and on_channel_removed) and
-- the sweep of unused outbox templates.
-- Built once per app ctx, so routes, start and events share it. Raises on
-- a bad config, which stops the server at start with the reason.
local contexts = setmetatable({}, { __mode = "k" })
function M.context(app_ctx)
  local ctx = contexts[app_ctx]
  if ctx then
    return ctx
  end
  ctx = setmetatable({}, { __index = app_ctx })
  ctx.policy = policy.from_config(app_ctx.config)
  ctx.expiry = expiry.new(ctx, app_ctx.timer)
  ctx.delivery = delivery.new(ctx)
  ctx.sweep = sweep.new(ctx, app_ctx.timer)
  contexts[app_ctx] = ctx
  return ctx
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- The response format for `req`, or nil and the 406 to answer (in JSON,
-- since nothing the client accepts can be produced).
local function negotiate(req)
  local format, err = rep.negotiate(req.headers and req.headers.accept)
  if not format then
    return nil, rep.error_response(err, "json")
  end
  return format
end

-- The format for the error answers of a handler whose success has no
-- body (DELETE, callback POST): a client that accepts nothing we make
-- still gets its 204; only an error falls back to JSON.
local function error_format(req)
  return rep.negotiate(req.headers and req.headers.accept) or "json"
end

local function failed(ctx, format, err, detail)
  if detail then
    ctx.log("error", "notification channels storage: " .. tostring(detail))
  end
  return rep.error_response(err, format)
end

local function not_found(req, format)
  return rep.error_response(errors.new("SVC3000", req.path), format)
end

-- The live channel the path names, or nil and the response to give: 404
-- when there is none for this user (never was, deleted, expired, or
-- another user's channel), or when the userId is one no URL of ours can
-- name (urls.usable_user).
local function load(ctx, req, params, format)
  if not urls.usable_user(params.userId) then
    return nil, not_found(req, format)
  end
  local row, err, detail = channels.find(ctx, params.userId, params.channelId)
  if row == nil then
    return nil, failed(ctx, format, err, detail)
  end
  if not row then
    return nil, not_found(req, format)
  end
  return row
end

-- The response format and the live channel the path names, for handlers
-- that answer with a body; or nil and the 406 or 404 to give.
local function negotiate_channel(ctx, req, params)
  local format, res = negotiate(req)
  if not format then
    return nil, res
  end
  local row
  row, res = load(ctx, req, params, format)
  if not row then
    return nil, res
  end
  return format, row
end

---------------------------------------------------------------------------
-- Handlers
---------------------------------------------------------------------------

-- GET /{userId}/channels (6.1.3): the user's live channels; 404 for a
-- userId that cannot have any (urls.usable_user).
function M.list(ctx, req, params)
  local format, res = negotiate(req)
  if not format then
    return res
  end
  if not urls.usable_user(params.userId) then
    return not_found(req, format)
  end
  local rows, err, detail = channels.list(ctx, params.userId)
  if not rows then
    return failed(ctx, format, err, detail)
  end
  return rep.response(200, format, "notificationChannelList",
    channels.represent_list(ctx.public_url, params.userId, rows))
end

-- POST /{userId}/channels (6.1.5, C.1): 201 with Location, or 200 with
-- the existing channel for a repeated clientCorrelator. A userId whose
-- URLs could not be followed (urls.usable_user) is refused with 400
-- SVC0002 naming it, before the body is read: the URLs handed back would
-- lead elsewhere.
function M.create(ctx, req, params)
  local format, res = negotiate(req)
  if not format then
    return res
  end
  if not urls.usable_user(params.userId) then
    return rep.error_response(errors.new("SVC0002", "userId"), format)
  end
  local doc, err = rep.decode(req, "notificationChannel", { form = true })
  if not doc then
    return rep.error_response(err, format)
  end
  local values
  values, err = channels.check_create(doc, { form = request.media_type(req.headers["content-type"]) == rep.FORM })
  if not values then
    return rep.error_response(err, format)
  end
  local row, created, detail = channels.create(ctx, params.userId, values)
  if not row then
    return failed(ctx, format, created, detail)
  end
  local value = channels.represent(ctx.public_url, row)
  if created then
    return rep.response(201, format, "notificationChannel", value,
      { Location = value.resourceURL })
  end
  return rep.response(200, format, "notificationChannel", value)
end

-- GET /{userId}/channels/{channelId} (6.2.3).
function M.read(ctx, req, params)
  local format, row = negotiate_channel(ctx, req, params)
  if not format then
    return row
  end
  return rep.response(200, format, "notificationChannel",
    channels.represent(ctx.public_url, row))
end

-- DELETE /{userId}/channels/{channelId} (6.2.6): 204, with everything
-- queued for the channel gone too.
function M.delete(ctx, req, params)
  local format = error_format(req)
  local row, res = load(ctx, req, params, format)
  if not row then
    return res
  end
  local ok, err, detail = channels.remove(ctx, row.channel_id, channels.DELETED)
  if ok == nil then
    return failed(ctx, format, err, detail)
  end
  return response.no_content()
end

-- GET .../channelLifetime (6.4.3): the seconds the channel has left.
function M.read_lifetime(ctx, req, params)
  local format, row = negotiate_channel(ctx, req, params)
  if not format then
    return row
  end
  return rep.response(200, format, "notificationChannelLifetime",
    channels.represent_lifetime(channels.remaining(row, ctx.now())))
end

-- PUT .../channelLifetime (6.4.4): restarts the lifetime with the one
-- granted for the request (the default when it names none) and answers
-- with it.
function M.refresh_lifetime(ctx, req, params)
  local format, row = negotiate_channel(ctx, req, params)
  if not format then
    return row
  end
  local doc, err = rep.decode(req, "notificationChannelLifetime")
  if not doc then
    return rep.error_response(err, format)
  end
  local requested
  requested, err = channels.check_lifetime(doc)
  if requested == false then
    return rep.error_response(err, format)
  end
  local granted, detail
  granted, err, detail = channels.refresh(ctx, row, requested)
  if granted == nil then
    return failed(ctx, format, err, detail)
  end
  if not granted then
    return not_found(req, format)
  end
  return rep.response(200, format, "notificationChannelLifetime",
    channels.represent_lifetime(granted))
end

-- POST .../notifications (6.3.5, C.2, D.12-D.15): the channelURL of a
-- LongPolling channel. 404 for an unknown channel or one of another type
-- (a WebSockets channel has no notification list), else nc/poll.lua
-- answers, now or once parked.
function M.poll(ctx, req, params)
  local format, row = negotiate_channel(ctx, req, params)
  if not format then
    return row
  end
  if row.channel_type ~= "LongPolling" then
    return not_found(req, format)
  end
  local res, err, detail = ctx.delivery:handle_poll(req, row, format)
  if res == nil then
    return failed(ctx, format, err, detail)
  elseif not res then
    return not_found(req, format)
  end
  return res
end

-- GET .../ws (Appendix I): the channelURL of a WebSockets channel. 404 for
-- an unknown channel or one of another type; 426 or 400 for a request that
-- is no upgrade or lacks the subprotocol (nc/websocket.lua); else the core
-- is asked to upgrade. Errors come in the Accept format when there is
-- one, as for DELETE: a WebSocket client rarely sends Accept.
function M.websocket(ctx, req, params)
  local format = error_format(req)
  local row, res = load(ctx, req, params, format)
  if not row then
    return res
  end
  if row.channel_type ~= "WebSockets" then
    return not_found(req, format)
  end
  local protocol, err, headers = websocket.handshake(req)
  if not protocol then
    return rep.error_response(err, format, headers)
  end
  return websocket.upgrade(row.channel_id, protocol)
end

-- POST /callbacks/{callbackId}: an enabler delivers one notification or a
-- notificationList (API.md 2). 204 once every notification of the body is
-- stored; 404 when the channel is gone; 400 for a body that holds no
-- notification, or SVC0003 for a list longer than policy
-- max_callback_notifications (nothing of it stored); 503 SVC2001 with
-- Retry-After when the channel's queue cannot take the whole body (policy
-- max_queued_notifications; nothing of it stored).
function M.callback(ctx, req, params)
  local format = error_format(req)
  local row, err, detail = channels.find_by_callback(ctx, params.callbackId)
  if row == nil then
    return failed(ctx, format, err, detail)
  end
  if not row then
    return not_found(req, format)
  end
  local items
  items, err = notification.split(req, ctx.policy.max_callback_notifications)
  if not items then
    return rep.error_response(err, format)
  end
  local n
  n, err, detail = callbacks.enqueue(ctx, row, items)
  if n == nil then
    return failed(ctx, format, err, detail)
  end
  if not n then
    return rep.error_response(err, format,
      { ["Retry-After"] = tostring(callbacks.RETRY_AFTER) })
  end
  return response.no_content()
end

---------------------------------------------------------------------------
-- Routes
---------------------------------------------------------------------------

-- The route entries { method, pattern, handler(req, params) }. Every other
-- method on these paths is a 405 whose Allow lists exactly these (the
-- router builds it): 6.1.4/6.1.6 "GET, POST"; 6.2.4/6.2.5 "GET, DELETE";
-- 6.4.5/6.4.6 "GET, PUT"; 6.3.3/6.3.4/6.3.6 "POST"; the WebSocket
-- channelURL "GET" (RFC 6455 4.1: the handshake is a GET); the callbackURL
-- "POST" (API.md 2).
--
-- "/callbacks/{callbackId}" has as many segments as "/{userId}/channels";
-- the router prefers the literal, so a user named "callbacks" cannot list
-- channels. No real userId (tel:, acr:, sip:...) is that word.
function M.routes(app_ctx)
  local ctx = M.context(app_ctx)
  local bind = router.binder(ctx)
  local user = BASE .. "/{userId}/channels"
  local channel = user .. "/{channelId}"
  return {
    { "GET", user, bind(M.list) },
    { "POST", user, bind(M.create) },
    { "GET", channel, bind(M.read) },
    { "DELETE", channel, bind(M.delete) },
    { "GET", channel .. "/channelLifetime", bind(M.read_lifetime) },
    { "PUT", channel .. "/channelLifetime", bind(M.refresh_lifetime) },
    { "POST", channel .. "/notifications", bind(M.poll) },
    { "GET", channel .. "/ws", bind(M.websocket) },
    { "POST", BASE .. "/callbacks/{callbackId}", bind(M.callback) },
  }
end

-- Called once at start, after the routes: removes channels that expired
-- while the server was down and sets the expiry timer for the rest, and
-- starts the sweep of outbox templates.
function M.start(app_ctx)
  local ctx = M.context(app_ctx)
  ctx.expiry:run()
  ctx.sweep:start()
end

-- The events of held connections (core/script.h), for app.lua.
function M.ws_open(app_ctx, key, id)
  M.context(app_ctx).delivery:ws_open(key, id)
end

function M.ws_message(app_ctx, key, id, text)
  M.context(app_ctx).delivery:ws_message(key, id, text)
end

function M.gone(app_ctx, key, id, why, code)
  M.context(app_ctx).delivery:gone(key, id, why, code)
end

function M.written(app_ctx, token, ok)
  M.context(app_ctx).delivery:written(token, ok)
end

return M
