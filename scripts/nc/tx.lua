-- core.db.transaction for code whose failures are expected ones
-- (nil, err, detail), not raised errors.
--
-- core.db.transaction rolls back only when its function raises. Inside
-- one, tx.abort(err, detail) raises a marked value that tx.run catches
-- after the rollback and returns as nil, err, detail; any other error is a
-- bug and is raised again unchanged.
local M = {}

local Abort = {}

-- Ends the enclosing tx.run with nil, err, detail, rolling back.
function M.abort(err, detail)
  error(setmetatable({ err = err, detail = detail }, Abort), 0)
end

-- Runs fn() in a transaction of `db` (core.db). Returns fn's results, or
-- nil, err, detail when fn called tx.abort.
function M.run(db, fn)
  local results = table.pack(pcall(db.transaction, fn))
  if results[1] then
    return table.unpack(results, 2, results.n)
  end
  local e = results[2]
  if getmetatable(e) == Abort then
    return nil, e.err, e.detail
  end
  error(e, 0)
end

return M
