-- The route table: (method, path pattern) -> handler.
--
-- Patterns are absolute paths whose segments are literals or "{name}"
-- captures: "/movies/v1/movies/{movieId}", or "/" for the root. A path is
-- split on "/" while still percent-encoded, so an encoded "/" inside a
-- userId ("tel%3A%2B1..." never has one, but "acr%3Aa%2Fb" may) stays
-- inside its segment; only then is each captured segment decoded.
--
-- Matching is exact, segment by segment. A trailing slash is a different
-- path and matches nothing: every URL we hand out (resourceURL, Location)
-- is without one, one resource gets one URL, and a redirect would make
-- clients resend bodies. Empty segments ("//") match nothing either.
--
-- Literal segments are compared as sent (not decoded): "/movies/v1/m%6Fvies"
-- is a 404. RFC 3986 6.2.2.2 would call it equivalent, but no client
-- encodes unreserved characters, and decoding literals would let "%2F"
-- forge a segment boundary.
local percent = require("codec.percent")

local M = {}

-- Allow lists (RFC 7231 7.4.1) come out in this order, which is the one the
-- OMA spec's own examples use ("GET, PUT", "GET, DELETE").
local METHOD_ORDER = { GET = 1, POST = 2, PUT = 3, PATCH = 4, DELETE = 5 }

local Router = {}
Router.__index = Router

local function split(path)
  if path:sub(1, 1) ~= "/" then
    return nil
  end
  local segments = {}
  -- "/a/b/" gives "a", "b", "": the empty last segment is what makes a
  -- trailing slash miss every pattern.
  for seg in (path:sub(2) .. "/"):gmatch("([^/]*)/") do
    segments[#segments + 1] = seg
  end
  return segments
end

local function compile(pattern)
  local segments = split(pattern)
  if not segments then
    error("route pattern must start with '/': " .. pattern, 3)
  end
  local parts = {}
  for i, seg in ipairs(segments) do
    local name = seg:match("^{([%w_]+)}$")
    if name then
      parts[i] = { capture = name }
    elseif pattern == "/" then
      -- The root is the one path whose only segment is empty: "/" matches
      -- itself, and "//" (two empty segments) still matches nothing.
      parts[i] = { literal = "" }
    elseif seg:find("[{}]") or seg == "" then
      error("bad segment '" .. seg .. "' in route pattern " .. pattern, 3)
    else
      parts[i] = { literal = seg }
    end
  end
  return parts
end

-- A key that sorts more specific patterns first: compared left to right, a
-- literal segment ("0") beats a capture ("1"). Two patterns with the same
-- key and length differ in some literal, so they never match the same path.
local function specificity(parts)
  local key = {}
  for i, part in ipairs(parts) do
    key[i] = part.literal and "0" or "1"
  end
  return table.concat(key)
end

local function sort_methods(methods)
  table.sort(methods, function(a, b)
    local ra, rb = METHOD_ORDER[a] or 99, METHOD_ORDER[b] or 99
    if ra ~= rb then
      return ra < rb
    end
    return a < b
  end)
  return methods
end

-- Adds a route. `method` is an upper-case HTTP method; HEAD is not added:
-- the app answers HEAD with the GET handler. A pattern given twice for the
-- same method is a bug.
function Router:add(method, pattern, handler)
  if type(handler) ~= "function" then
    error("route handler for " .. method .. " " .. pattern .. " is not a function", 2)
  end
  local route = self.by_pattern[pattern]
  if not route then
    route = { pattern = pattern, parts = compile(pattern), handlers = {} }
    route.rank = specificity(route.parts)
    self.by_pattern[pattern] = route
    self.routes[#self.routes + 1] = route
    -- Most specific first, so the first match is the best one.
    table.sort(self.routes, function(a, b)
      return a.rank < b.rank
    end)
  end
  if route.handlers[method] then
    error("route added twice: " .. method .. " " .. pattern, 2)
  end
  route.handlers[method] = handler
  return self
end

-- Captures of `route` for `segments`, or nil when the path does not match.
local function match_route(route, segments)
  local parts = route.parts
  if #parts ~= #segments then
    return nil
  end
  local params = {}
  for i, part in ipairs(parts) do
    local seg = segments[i]
    if part.literal then
      if part.literal ~= seg then
        return nil
      end
    else
      if seg == "" then
        return nil
      end
      -- A segment that is not valid percent-encoding names nothing we
      -- could have handed out: no match, so the client gets a 404.
      local value = percent.decode(seg)
      if not value then
        return nil
      end
      params[part.capture] = value
    end
  end
  return params
end

-- Finds the handler for `method` and raw `path`.
-- Returns handler, params when found;
--         nil, "no path" when no pattern matches the path;
--         nil, "no method", allowed when the path matches but not the
--         method; `allowed` is the sorted list of methods for that path.
-- When several patterns match, the most specific decides, whatever the
-- order they were added in: "/nc/v1/callbacks/{id}" wins over
-- "/nc/v1/{userId}/channels" for "/nc/v1/callbacks/channels".
function Router:match(method, path)
  local segments = split(path)
  if not segments then
    return nil, "no path"
  end
  for _, route in ipairs(self.routes) do
    local params = match_route(route, segments)
    if params then
      local handler = route.handlers[method]
      if handler then
        return handler, params
      end
      local allowed = {}
      for m in pairs(route.handlers) do
        allowed[#allowed + 1] = m
      end
      return nil, "no method", sort_methods(allowed)
    end
  end
  return nil, "no path"
end

function M.new()
  return setmetatable({ routes = {}, by_pattern = {} }, Router)
end

-- A function that binds a handler fn(ctx, req, params) to `ctx`, giving
-- the handler(req, params) a route entry wants; each area's routes(app_ctx)
-- binds its handlers to its own ctx this way.
function M.binder(ctx)
  return function(fn)
    return function(req, params)
      return fn(ctx, req, params)
    end
  end
end

return M
