-- The tokens that tag output handed to the core, and what each one
-- carries until app.written(token, ok) reports on it (core/script.h:
-- res.token, core.hub.answer and core.hub.send take one; written comes
-- exactly once per token).
--
-- An entry is any table; nc/delivery.lua puts in it whose output it was
-- (a long poll answer, a WebSocket message) and which notifications it
-- held, so that they leave the outbox only once written. Entries live
-- only while their output is in flight, so the registry is bounded by the
-- core's own output limits.
local M = {}

local Tokens = {}
Tokens.__index = Tokens

function M.new()
  return setmetatable({ last = 0, entries = {}, count = 0 }, Tokens)
end

-- Registers `entry` and returns its token: an integer > 0, never reused
-- (a late written() for an old token must not settle a newer entry).
function Tokens:issue(entry)
  assert(type(entry) == "table", "a token entry is a table")
  self.last = self.last + 1
  self.entries[self.last] = entry
  self.count = self.count + 1
  return self.last
end

-- Removes and returns the entry of `token`; nil when there is none (never
-- issued, already taken). Also how output the core refused (nil, "full")
-- gives its token back.
function Tokens:take(token)
  local entry = self.entries[token]
  if entry ~= nil then
    self.entries[token] = nil
    self.count = self.count - 1
  end
  return entry
end

-- The number of tokens in flight.
function Tokens:size()
  return self.count
end

return M
