-- GET /health (API.md 4): 200 {"status":"ok"} while the loop and the
-- database answer. That this handler runs at all shows the loop answers;
-- "SELECT 1" shows SQLite does.
local response = require("http.response")

local M = {}

function M.check(ctx)
  -- pcall as well as the nil, err check: a database that is gone may raise
  -- rather than fail, and health must answer 503 then, not 500.
  local ok, rows, err = pcall(ctx.db.query, "SELECT 1 AS ok")
  if ok and rows and rows[1] and rows[1].ok == 1 then
    return response.json(200, { status = "ok" })
  end
  ctx.log("warn", "health: database does not answer: "
    .. tostring(ok and err or rows))
  return response.json(503, { status = "unavailable" })
end

function M.routes(ctx)
  return {
    { "GET", "/health", function()
      return M.check(ctx)
    end },
  }
end

return M
