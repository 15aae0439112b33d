-- The one way a movie changes. Create, replace, patch and delete all end in
-- M.apply, which sees the row before and after, works out what changed,
-- stamps lastModified, writes, logs, and hands the change to ctx.on_change
-- inside the same transaction. That hook is where subscriptions hang their
-- notifications (API.md 3; DESIGN.md "One update, end to end"): the movie
-- row and the outbox rows commit together or not at all.
--
-- No-op rule: a replace or patch that leaves every writable field as it was
-- is no change. Nothing is written, lastModified does not move, nothing is
-- logged above debug and on_change is not called (API.md 3: "A change that
-- alters nothing sends nothing"). lastModified thus always means "when the
-- content last changed", and a client retrying the same PUT is harmless.
local errors = require("codec.errors")
local json = require("codec.json")
local timestamp = require("codec.timestamp")
local fields = require("movies.fields")
local store = require("movies.store")

local M = {}

M.CREATED = "MovieCreated"
M.UPDATED = "MovieUpdated"
M.DELETED = "MovieDeleted"

-- Runs fn() in one transaction. fn returns a result, or nil, err, detail
-- for an expected failure; that failure must still roll back (a later step
-- may fail after the movie row was written), so it is carried out of
-- core.db.transaction as a raise and turned back into nil, err here. Any
-- other raise is a bug and goes on up.
local function atomically(db, fn)
  local abort = {}
  local ok, result = pcall(db.transaction, function()
    local r, err, detail = fn()
    if r == nil then
      error({ [abort] = { err, detail } }, 0)
    end
    return r
  end)
  if ok then
    return result
  end
  if type(result) == "table" and result[abort] then
    return nil, result[abort][1], result[abort][2]
  end
  error(result, 0)
end

-- The writable fields (API names, in fields.WRITABLE order) whose values
-- differ between two rows; a nil row counts as all NULL.
local function diff(old, new)
  local changed, previous = {}, {}
  for _, name in ipairs(fields.WRITABLE) do
    local column = fields.COLUMN[name]
    local before = old and old[column]
    local after = new and new[column]
    if before ~= after then
      changed[#changed + 1] = name
      if old then
        -- A field that was NULL is named with JSON null, so "it had no
        -- genre" is told from "genre was not reported".
        if before == nil then
          previous[name] = json.null
        else
          previous[name] = before
        end
      end
    end
  end
  return changed, previous
end

-- lastModified for a change at `now_s` (seconds) to a row last stamped
-- `old_stamp`. It must move strictly forward on every change (a reader
-- compares it to know it missed one), even when the clock has not
-- advanced a millisecond, or went back.
function M.next_stamp(now_s, old_stamp)
  local now_ms = timestamp.ms_from_seconds(now_s)
  local old_ms = old_stamp and timestamp.parse(old_stamp)
  if old_ms and now_ms <= old_ms then
    now_ms = old_ms + 1
  end
  return timestamp.format(now_ms)
end

local function copy(row)
  local t = {}
  for k, v in pairs(row) do
    t[k] = v
  end
  return t
end

local function gone(id)
  return nil, errors.new("SVC3000", "/movies/v1/movies/" .. tostring(id))
end

local function write(ctx, old, new)
  local db = ctx.db
  if not old then
    local id, err, detail = store.insert(db, new)
    if not id then
      return nil, err, detail
    end
    new.movie_id = id
    return new
  end
  if not new then
    local ok, err, detail = store.delete(db, old.movie_id)
    if ok == nil then
      return nil, err, detail
    end
    if not ok then
      return gone(old.movie_id)
    end
    return old
  end
  local ok, err, detail = store.update(db, new)
  if ok == nil then
    return nil, err, detail
  end
  if not ok then
    return gone(new.movie_id)
  end
  return new
end

local function describe(change)
  local what = #change.changed > 0 and table.concat(change.changed, ", ") or "-"
  return string.format("movie %d %s: %s", change.movie_id, change.event, what)
end

-- Applies one change to a movie.
--   ctx: { db = core.db, now = core.now, log = core.log,
--          on_change = optional function(ctx, change) -> true | nil, err }
--   old_row: the stored row, nil for a create.
--   new_row: the row wanted (columns of movies/fields.lua, movie_id kept
--            from old_row, last_modified ignored), nil for a delete.
-- Returns row, change: the row as stored (for a delete, the row that was)
-- and the change record
--   { event = "MovieCreated" | "MovieUpdated" | "MovieDeleted",
--     movie_id, changed = { API field names },
--     previous = { API name = value before, json.null for NULL },
--     old = old_row, new = stored row or nil }.
-- A no-op returns old_row, nil. Failures return nil, err (codec/errors).
function M.apply(ctx, old_row, new_row)
  if not old_row and not new_row then
    error("changes.apply needs an old row, a new row or both", 2)
  end
  local changed, previous = diff(old_row, new_row)
  local event
  if not old_row then
    event = M.CREATED
  elseif not new_row then
    event = M.DELETED
  elseif #changed == 0 then
    ctx.log("debug", string.format("movie %d: nothing changed", old_row.movie_id))
    return old_row, nil
  else
    event = M.UPDATED
  end

  local new
  if new_row then
    new = copy(new_row)
    if old_row then
      new.movie_id = old_row.movie_id
    end
    new.last_modified = M.next_stamp(ctx.now(), old_row and old_row.last_modified)
  end

  local change
  local stored, err, detail = atomically(ctx.db, function()
    local row, werr, wdetail = write(ctx, old_row, new)
    if not row then
      return nil, werr, wdetail
    end
    change = {
      event = event,
      movie_id = row.movie_id,
      changed = changed,
      previous = previous,
      old = old_row,
      new = new_row and row or nil,
    }
    if ctx.on_change then
      local ok, herr, hdetail = ctx.on_change(ctx, change)
      if not ok then
        return nil, herr, hdetail
      end
    end
    return row
  end)
  if not stored then
    ctx.log("error", string.format("movie %s %s failed: %s (%s)",
      tostring((old_row or new_row).movie_id), event,
      errors.message(err), tostring(detail)))
    return nil, err
  end
  ctx.log("info", describe(change))
  return stored, change
end

return M
