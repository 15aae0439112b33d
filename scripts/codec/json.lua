-- JSON in and out, on top of lua-cjson.
--
-- Decoding is cjson's, made safe: malformed input gives nil and an OMA
-- error, never a raise, and the non-standard NaN/Infinity/hex numbers cjson
-- accepts by default are refused. Encoding walks the value itself and uses
-- cjson only for strings, because Debian's cjson 2.1.0 can neither encode an
-- empty array (API.md 2: a repeatable element is always an array, even
-- empty) nor leave "/" unescaped, and it prints integers above 2^53 with 14
-- digits. Walking also lets object keys come out sorted, so equal values
-- always encode to equal text.
local cjson = require("cjson")
local errors = require("codec.errors")

local M = {}

-- Deep enough for any document of ours, shallow enough that a hostile
-- "[[[[..." stops early instead of using C stack.
local MAX_DEPTH = 64

-- The value that encodes as JSON null and that decoding gives for null.
M.null = cjson.null

-- Tables with this metatable encode as arrays even when empty. Other
-- modules may use any metatable with the same field (codec/errors does, as
-- it cannot require this module).
local ARRAY_MT = { __jsontype = "array" }
local OBJECT_MT = { __jsontype = "object" }

local decoder = cjson.new()
decoder.decode_invalid_numbers(false)
decoder.decode_max_depth(MAX_DEPTH)

-- Marks `t` (a new table when nil) as a JSON array and returns it.
function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

-- Marks `t` (a new table when nil) as a JSON object and returns it.
function M.object(t)
  return setmetatable(t or {}, OBJECT_MT)
end

-- True when a decoded value is a JSON object. cjson gives a plain table for
-- both objects and arrays; a decoded object never has the integer key 1
-- (JSON keys are strings), a non-empty array always has it. An empty array
-- cannot be told from an empty object and counts as one.
function M.is_object(value)
  return type(value) == "table" and rawget(value, 1) == nil
end

-- `text` with every comma that follows a value and stands right before a
-- closing } or ] (whitespace between) removed. Commas inside strings, and
-- ones with no value before them ("[,]"), are left for the parser to refuse.
function M.without_trailing_commas(text)
  local out, n = {}, 0
  local i, len = 1, #text
  local in_string = false
  local last = "" -- the last character outside whitespace
  while i <= len do
    local c = text:sub(i, i)
    if in_string then
      if c == "\\" then
        n = n + 1
        out[n] = text:sub(i, i + 1)
        i = i + 2
      else
        if c == '"' then
          in_string = false
        end
        n = n + 1
        out[n] = c
        i = i + 1
      end
    else
      if c == '"' then
        in_string = true
      elseif c == "," and last ~= "," and last ~= "[" and last ~= "{" then
        local next_char = text:match("^%s*(.)", i + 1)
        if next_char == "}" or next_char == "]" then
          c = ""
        end
      end
      if c ~= "" and not c:match("^%s$") then
        last = c
      end
      n = n + 1
      out[n] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- The UTF-8 encoding of U+FEFF, the byte order mark.
local BOM = "\239\187\191"

-- Decodes `text`. Returns the value and the text that was parsed: `text`
-- itself, or `text` without its leading byte order mark or its trailing
-- commas (below), which is what a caller that scans the raw text must
-- scan. Nil and an SVC0001 error when the text is not JSON.
function M.decode_text(text)
  if type(text) ~= "string" then
    return nil, errors.new("SVC0001", "request body is not JSON")
  end
  -- RFC 8259 8.1: a parser MAY ignore a byte order mark rather than treat
  -- it as an error. Some Windows tools write one before every UTF-8 file a
  -- client then posts; cjson refuses it, so it goes here. Only one, and
  -- only at the very start: anywhere else U+FEFF is not JSON whitespace.
  if text:sub(1, 3) == BOM then
    text = text:sub(4)
  end
  local ok, value = pcall(decoder.decode, text)
  if ok then
    return value, text
  end
  -- OMA NC Appendix D writes its examples with a comma before the
  -- closing brace; clients copy them. Accept that one looseness, and
  -- report the original error when the text is broken in other ways.
  local relaxed = M.without_trailing_commas(text)
  if relaxed ~= text then
    local ok2, value2 = pcall(decoder.decode, relaxed)
    if ok2 then
      return value2, relaxed
    end
  end
  -- cjson's message says where ("... at character 12"), which is what a
  -- client needs to find its mistake; it carries no server detail.
  return nil, errors.new("SVC0001", "malformed JSON: " .. tostring(value))
end

-- Decodes `text`. Returns the value, or nil and an SVC0001 error when the
-- text is not JSON.
function M.decode(text)
  local value, parsed_or_err = M.decode_text(text)
  if value == nil then
    return nil, parsed_or_err
  end
  return value
end

-- Decodes a document whose root must be an object. A root of another type
-- is well-formed JSON of the wrong shape: SVC0002 naming `part` (default
-- "body").
function M.decode_object(text, part)
  local value, err = M.decode(text)
  if err then
    return nil, err
  end
  if not M.is_object(value) then
    return nil, errors.new("SVC0002", part or "body")
  end
  return value
end

-- The first key that appears twice in one object of `text`, in text
-- order, or nil. cjson keeps the last of duplicates without a word, so
-- `{"channelType":"OMAPush","channelType":"LongPolling"}` would be read as
-- one of two different requests; RFC 8259 4 leaves that unpredictable, and
-- a client that sent it has a bug worth hearing about. Scans only strings
-- and brackets, so it expects text the decoder has accepted (trailing
-- commas and a byte order mark are fine).
function M.duplicate_key(text)
  -- One entry per open bracket: the keys seen in an object, false for an
  -- array.
  local open, depth = {}, 0
  local i = 1
  while true do
    local at, _, c = text:find('([{}%[%]"])', i)
    if not at then
      return nil
    end
    i = at + 1
    if c == "{" then
      depth = depth + 1
      open[depth] = {}
    elseif c == "[" then
      depth = depth + 1
      open[depth] = false
    elseif c == "}" or c == "]" then
      open[depth] = nil
      depth = depth - 1
    else
      -- A string from `at` to its closing quote, skipping escapes.
      local close
      repeat
        local q, _, d = text:find('(["\\])', i)
        if not q then
          return nil
        end
        if d == '"' then
          close = q
        else
          i = q + 2
        end
      until close
      i = close + 1
      local keys = open[depth]
      if keys and text:find("^%s*:", i) then
        local token = text:sub(at, close)
        local key = token:find("\\", 1, true) and decoder.decode(token)
          or token:sub(2, -2)
        if keys[key] then
          return key
        end
        keys[key] = true
      end
    end
  end
end

local encode_value

local function encode_string(s)
  -- cjson escapes "/" as "\/". In its output a backslash is always the
  -- first character of an escape, and a literal backslash is itself "\\",
  -- so every "\/" left to right is an escaped slash and can be unescaped.
  local quoted = cjson.encode(s)
  -- The gsub costs more than the encoding; most strings have no slash.
  if quoted:find("\\/", 1, true) then
    quoted = quoted:gsub("\\/", "/")
  end
  return quoted
end

local function encode_number(n)
  if n ~= n or n == math.huge or n == -math.huge then
    error("cannot encode " .. tostring(n) .. " as JSON", 0)
  end
  local i = math.tointeger(n)
  if i then
    return string.format("%d", i)
  end
  -- The shortest of these that reads back as the same double.
  local s = string.format("%.14g", n)
  if tonumber(s) ~= n then
    s = string.format("%.17g", n)
  end
  return s
end

-- Encoded object keys: the same few dozen element names make up every
-- document we write, and quoting a key costs a C call. Bounded, since a
-- converted notification may carry keys a client chose.
local KEY_CACHE_MAX = 1024
local key_cache, key_cache_size = {}, 0

local function encode_key(k)
  local quoted = key_cache[k]
  if quoted then
    return quoted
  end
  quoted = encode_string(k)
  if key_cache_size < KEY_CACHE_MAX and #k <= 64 then
    key_cache[k] = quoted
    key_cache_size = key_cache_size + 1
  end
  return quoted
end

-- An object unless declared an array (json.array) or its keys are exactly
-- 1..n; empty tables are objects unless declared. Object keys come out
-- sorted, so equal documents encode to equal text.
local function encode_table(t, depth)
  if depth > MAX_DEPTH then
    error("JSON value nested too deeply (a cycle?)", 0)
  end
  local mt = getmetatable(t)
  local declared = mt and mt.__jsontype
  local out = {}
  if declared ~= "array" then
    local keys, n, others, other_type = {}, 0, 0, nil
    for k in pairs(t) do
      if type(k) == "string" then
        n = n + 1
        keys[n] = k
      else
        others = others + 1
        other_type = other_type or type(k)
      end
    end
    if others == 0 then
      table.sort(keys)
      for i = 1, n do
        local k = keys[i]
        out[i] = encode_key(k) .. ":" .. encode_value(t[k], depth + 1)
      end
      return "{" .. table.concat(out, ",") .. "}"
    end
    if declared == "object" then
      error("JSON object keys must be strings, got " .. other_type, 0)
    end
    if n > 0 or #t ~= others then
      error("cannot encode a table with mixed or sparse keys as JSON", 0)
    end
  end
  for i = 1, #t do
    out[i] = encode_value(t[i], depth + 1)
  end
  return "[" .. table.concat(out, ",") .. "]"
end

encode_value = function(v, depth)
  local tv = type(v)
  if tv == "string" then
    return encode_string(v)
  elseif tv == "number" then
    return encode_number(v)
  elseif tv == "boolean" then
    return v and "true" or "false"
  elseif tv == "table" then
    return encode_table(v, depth)
  elseif v == M.null then
    return "null"
  end
  error("cannot encode a " .. tv .. " as JSON", 0)
end

-- Encodes `value`. A value that has no JSON form (function, NaN, mixed
-- table) is a bug in the caller and raises.
function M.encode(value)
  return encode_value(value, 0)
end

return M
