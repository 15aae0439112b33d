-- Checking what a client sends for a movie (API.md 3) and turning it into
-- column values. Every refusal is 400 SVC0002 naming one element: the
-- first wrong one in a fixed order (root, unknown fields in name order,
-- then title, premiereDate, director, genre, the read-only fields, then
-- missing ones), so the same input always gets the same answer.
local errors = require("codec.errors")
local json = require("codec.json")
local timestamp = require("codec.timestamp")
local fields = require("movies.fields")

local M = {}

local ROOT = "movie"

-- Characters, not bytes. Long enough for any real title ("Dr. Strangelove
-- or: How I Learned..." is 70) and small enough that a list page of 1000
-- movies stays a few hundred KiB.
local MAX_CHARS = { title = 300, director = 200, genre = 100 }

-- Largest movieId we accept in a path or body: fits a Lua integer and a
-- JSON number exactly (2^53).
local MAX_ID = 9007199254740992

-- The integer id in a path segment or a numeric string, or nil. Only the
-- canonical decimal form: "007", "+7", "7.0" and " 7" name no movie, so one
-- movie has one URL.
function M.movie_id(s)
  if type(s) ~= "string" or not s:match("^[1-9]%d*$") or #s > 16 then
    return nil
  end
  local id = math.tointeger(tonumber(s))
  if not id or id > MAX_ID then
    return nil
  end
  return id
end

local function text_value(name, v)
  if type(v) ~= "string" then
    return nil, errors.new("SVC0002", name)
  end
  -- Stored text must be valid UTF-8 (cjson passes invalid bytes through
  -- and would then emit them to every reader), one line, and not blank.
  local chars = utf8.len(v)
  if not chars or chars > MAX_CHARS[name] or v:find("%c") or not v:find("%S") then
    return nil, errors.new("SVC0002", name)
  end
  return v
end

-- Checks one writable field. Returns ok, value (value nil for a null in a
-- nullable field) or nil, err.
local function writable_value(name, v)
  if v == json.null then
    if fields.NULLABLE[name] then
      return true, nil
    end
    return nil, errors.new("SVC0002", name)
  end
  if name == "premiereDate" then
    if not timestamp.parse_date(v) then
      return nil, errors.new("SVC0002", name)
    end
    return true, v
  end
  local s, err = text_value(name, v)
  if not s then
    return nil, err
  end
  return true, s
end

-- A movieId in a body, as a JSON number or a numeric string (API.md 2: both
-- forms are accepted on input). Returns the integer or nil.
local function body_movie_id(v)
  if type(v) == "number" then
    local id = math.tointeger(v)
    if id and id >= 1 and id <= MAX_ID then
      return id
    end
    return nil
  end
  return M.movie_id(v)
end

local function check_read_only(movie, mode, path_id)
  local id = movie.movieId
  if id ~= nil then
    -- On create the server picks the id, so any id is wrong. On a change
    -- it is accepted only as a repeat of the path's, which lets a client
    -- PUT back what it read; any other id would be a different movie.
    if mode == "create" or body_movie_id(id) ~= path_id then
      return errors.new("SVC0002", "movieId")
    end
  end
  -- lastModified and resourceURL are the server's and are ignored, but
  -- only when they have the type the server gives them.
  for _, name in ipairs({ "lastModified", "resourceURL" }) do
    local v = movie[name]
    if v ~= nil and type(v) ~= "string" then
      return errors.new("SVC0002", name)
    end
  end
  return nil
end

local KNOWN = {}
for _, name in ipairs(fields.WRITABLE) do
  KNOWN[name] = true
end
for _, name in ipairs(fields.READ_ONLY) do
  KNOWN[name] = true
end

local function first_unknown(t, known)
  local unknown = {}
  for k in pairs(t) do
    if not known[k] then
      unknown[#unknown + 1] = k
    end
  end
  table.sort(unknown)
  return unknown[1]
end

local function is_required(name, mode)
  if mode == "replace" then
    return true
  end
  return mode == "create" and fields.REQUIRED_ON_CREATE[name] == true
end

-- Checks a decoded {"movie": {...}} document.
--   mode: "create" (POST: title and premiereDate required),
--         "replace" (PUT: every writable field required, director and
--                    genre may be null),
--         "patch" (PATCH: any subset; null clears director or genre).
--   path_id: the movieId of the path, for "replace" and "patch".
-- Returns values, present: column -> value for the fields given (a null
-- gives no value), and column -> true for every field given; or nil, err.
function M.document(doc, mode, path_id)
  if mode ~= "create" and mode ~= "replace" and mode ~= "patch" then
    error("unknown validation mode " .. tostring(mode), 2)
  end
  -- A missing or malformed root is reported before stray siblings: it is
  -- the bigger mistake ({"film": {...}} is told to send "movie").
  local movie = json.is_object(doc) and doc[ROOT]
  if not json.is_object(movie) then
    return nil, errors.new("SVC0002", ROOT)
  end
  local extra = first_unknown(doc, { [ROOT] = true })
  if extra then
    return nil, errors.new("SVC0002", extra)
  end
  local unknown = first_unknown(movie, KNOWN)
  if unknown then
    return nil, errors.new("SVC0002", unknown)
  end

  local values, present = {}, {}
  for _, name in ipairs(fields.WRITABLE) do
    local v = movie[name]
    if v ~= nil then
      local ok, value_or_err = writable_value(name, v)
      if not ok then
        return nil, value_or_err
      end
      local column = fields.COLUMN[name]
      values[column] = value_or_err
      present[column] = true
    end
  end

  local err = check_read_only(movie, mode, path_id)
  if err then
    return nil, err
  end

  for _, name in ipairs(fields.WRITABLE) do
    if movie[name] == nil and is_required(name, mode) then
      return nil, errors.new("SVC0002", name)
    end
  end
  return values, present
end

return M
