-- HTTP handlers of the movies resources (API.md 3), base
-- {public_url}/movies/v1. Each handler takes ctx (db, now, log, public_url,
-- optional on_change; see movies/changes.lua) and the request, and returns
-- a response; nothing here reaches for `core` itself. The area's ctx
-- (M.context) sets on_change to movies/notify.lua, which queues the
-- movieNotifications of every change in its transaction.
local errors = require("codec.errors")
local query = require("codec.query")
local request = require("http.request")
local response = require("http.response")
local changes = require("movies.changes")
local notify = require("movies.notify")
local represent = require("movies.represent")
local store = require("movies.store")
local validate = require("movies.validate")
local router = require("router")

local M = {}

local BASE = "/movies/v1"

-- A page holds 100 movies unless asked otherwise and never more than 1000,
-- which bounds one response to a few hundred KiB.
local DEFAULT_LIMIT = 100
local MAX_LIMIT = 1000
-- Offsets are bounded only to stay exact integers; past the end of the
-- table a page is simply empty.
local MAX_OFFSET = 999999999999999

-- The area's ctx: the app's (db, now, log, public_url, timer, and
-- wake_outbox: app.lua's way to the nc area's delivery) plus on_change,
-- so that every change of a movie queues its notifications (API.md 3).
-- Built once per app ctx.
local contexts = setmetatable({}, { __mode = "k" })
function M.context(app_ctx)
  local ctx = contexts[app_ctx]
  if not ctx then
    ctx = setmetatable({ on_change = notify.on_change }, { __index = app_ctx })
    contexts[app_ctx] = ctx
  end
  return ctx
end

-- changes.apply (row, change or nil, err), then, its transaction over,
-- the channels a committed change queued notifications for are woken; a
-- failed change wakes nobody. Never from inside the transaction: delivery
-- must read rows that are there.
local function apply(ctx, old, new)
  local row, change_or_err = changes.apply(ctx, old, new)
  notify.settled(ctx, row ~= nil)
  return row, change_or_err
end

local function failed(ctx, err, detail)
  if detail then
    ctx.log("error", "movies storage: " .. tostring(detail))
  end
  return response.error(err)
end

local function not_found(req)
  return response.error(errors.new("SVC3000", req.path))
end

-- A non-negative decimal integer query parameter within [min, max], or
-- `default` when absent. Anything else, including an empty value, a sign
-- or a fraction, is SVC0002 naming the parameter.
local function int_param(params, name, default, min, max)
  local v, err = query.one(params, name)
  if err then
    return nil, err
  end
  if v == nil then
    return default
  end
  local n = v:match("^%d+$") and #v <= 15 and math.tointeger(tonumber(v))
  if not n or n < min or n > max then
    return nil, errors.new("SVC0002", name)
  end
  return n
end

-- GET /movies?limit=&offset=&title=. Unknown parameters are ignored, as
-- HTTP caches and proxies add their own.
function M.list(ctx, req)
  local params, err = query.parse(req.query)
  if not params then
    return response.error(err)
  end
  local limit, offset, title
  limit, err = int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
  if err then
    return response.error(err)
  end
  offset, err = int_param(params, "offset", 0, 0, MAX_OFFSET)
  if err then
    return response.error(err)
  end
  -- An empty title needs no special case: every title contains "".
  title, err = query.one(params, "title")
  if err then
    return response.error(err)
  end
  local rows, serr, detail = store.list(ctx.db, limit, offset, title)
  if not rows then
    return failed(ctx, serr, detail)
  end
  return response.json(200, represent.list(rows, ctx.public_url))
end

-- The stored row named by the path, or nil and the response to give: 404
-- for an id that is not canonical decimal or names no movie.
local function load(ctx, req, params)
  local id = validate.movie_id(params.movieId)
  if not id then
    return nil, not_found(req)
  end
  local row, err, detail = store.get(ctx.db, id)
  if err then
    return nil, failed(ctx, err, detail)
  end
  if not row then
    return nil, not_found(req)
  end
  return row
end

-- The request's movie document. Every refusal of a movie body is 400
-- SVC0002 naming what is wrong (the issue's contract for this API), so a
-- body that is not JSON at all names "movie" too, with the parser's
-- "at character N" kept for the client (the NC API answers that case
-- with SVC0001, API.md 2).
local function movie_document(req)
  local doc, err = request.json_object(req, "movie")
  if not doc and err.id == "SVC0001" then
    err = errors.new("SVC0002", string.format("movie (%s)", err.variables[1]))
  end
  return doc, err
end

-- GET /movies/{movieId}
function M.read(ctx, req, params)
  local row, res = load(ctx, req, params)
  if not row then
    return res
  end
  return response.json(200, represent.document(row, ctx.public_url))
end

-- POST /movies: 201 with Location, the body being the movie as stored.
function M.create(ctx, req)
  local doc, err = movie_document(req)
  if not doc then
    return response.error(err)
  end
  local values
  values, err = validate.document(doc, "create")
  if not values then
    return response.error(err)
  end
  local row
  row, err = apply(ctx, nil, values)
  if not row then
    return response.error(err)
  end
  local url = represent.resource_url(ctx.public_url, row.movie_id)
  return response.json(201, represent.document(row, ctx.public_url),
    { Location = url })
end

-- PUT and PATCH share everything but the merge: PUT replaces every
-- writable field, PATCH only those given. The path is checked first (a
-- malformed id is 404 whatever the body), then the body, then the store,
-- so a bad body is a 400 without a database round trip.
local function change(ctx, req, params, mode)
  local id = validate.movie_id(params.movieId)
  if not id then
    return not_found(req)
  end
  local doc, err = movie_document(req)
  if not doc then
    return response.error(err)
  end
  local values, present = validate.document(doc, mode, id)
  if not values then
    -- On failure the second value is the error.
    return response.error(present)
  end
  local old, res = load(ctx, req, params)
  if not old then
    return res
  end
  local new = { movie_id = old.movie_id }
  if mode == "patch" then
    for k, v in pairs(old) do
      new[k] = v
    end
  end
  for column in pairs(present) do
    new[column] = values[column]
  end
  local row
  row, err = apply(ctx, old, new)
  if not row then
    return response.error(err)
  end
  return response.json(200, represent.document(row, ctx.public_url))
end

-- PUT /movies/{movieId}
function M.replace(ctx, req, params)
  return change(ctx, req, params, "replace")
end

-- PATCH /movies/{movieId}
function M.patch(ctx, req, params)
  return change(ctx, req, params, "patch")
end

-- DELETE /movies/{movieId}: 204.
function M.delete(ctx, req, params)
  local old, res = load(ctx, req, params)
  if not old then
    return res
  end
  local row, err = apply(ctx, old, nil)
  if not row then
    return response.error(err)
  end
  return response.no_content()
end

-- The route entries { method, pattern, handler(req, params) } bound to the
-- area's ctx of `app_ctx`. The table of API.md 3: every other method on
-- these paths is a 405.
function M.routes(app_ctx)
  local ctx = M.context(app_ctx)
  local bind = router.binder(ctx)
  return {
    { "GET", BASE .. "/movies", bind(M.list) },
    { "POST", BASE .. "/movies", bind(M.create) },
    { "GET", BASE .. "/movies/{movieId}", bind(M.read) },
    { "PUT", BASE .. "/movies/{movieId}", bind(M.replace) },
    { "PATCH", BASE .. "/movies/{movieId}", bind(M.patch) },
    { "DELETE", BASE .. "/movies/{movieId}", bind(M.delete) },
  }
end

return M
