-- The newcomer's page (issue 5, "What a newcomer sees"): GET / is
-- web/index.html, and GET /web/{name} the files it loads (web/app.js,
-- web/style.css).
--
-- The core serves the file (res.file, core/script.h): content type,
-- validators, 304s, and the refusal of any path that could leave the web
-- directory. A handler here only names the file and gives the response the
-- core sends instead when it cannot serve one: the same 404 SVC3000 as any
-- unknown path, so a missing page looks like nothing is there.
local errors = require("codec.errors")
local response = require("http.response")

local M = {}

M.INDEX = "index.html"

-- A file the page may load: one segment of letters, digits, ".", "_" or
-- "-", not starting with "." (no hidden files, no ".."). The core checks
-- paths itself; this keeps /web/ to the flat folder the page uses, and
-- keeps a name the core would refuse from even reaching it.
local NAME = "^[%w_-][%w._-]*$"

function M.is_asset(name)
  return type(name) == "string" and #name <= 255 and name:match(NAME) ~= nil
end

-- The response for `file` under the web directory; what the core sends
-- when there is no such file is a 404 naming the request path.
function M.file(req, file)
  local res = response.error(errors.new("SVC3000", req.path))
  res.file = file
  return res
end

function M.routes()
  return {
    { "GET", "/", function(req)
      return M.file(req, M.INDEX)
    end },
    { "GET", "/web/{name}", function(req, params)
      if not M.is_asset(params.name) then
        return response.error(errors.new("SVC3000", req.path))
      end
      return M.file(req, params.name)
    end },
  }
end

return M
