-- ISO 8601 UTC timestamps with milliseconds ("2026-11-28T12:00:00.123Z")
-- and calendar dates ("2026-11-28"), to and from integer milliseconds since
-- the Unix epoch.
--
-- The arithmetic is done here rather than with os.date/os.time: os.time
-- reads its table as local time, and the server's time zone must not
-- change what a stored timestamp means.
local M = {}

local MS_PER_DAY = 86400000

local DAYS_IN_MONTH = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

-- Days in month `m` of year `y`.
function M.days_in_month(y, m)
  if m == 2 and is_leap(y) then
    return 29
  end
  return DAYS_IN_MONTH[m]
end

-- Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. The
-- year is counted from March so the leap day falls at the end of it.
local function days_from_civil(y, m, d)
  if m <= 2 then
    y = y - 1
  end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- The inverse of days_from_civil.
local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then
    y = y + 1
  end
  return y, m, d
end

-- Parses "YYYY-MM-DD" that names a real calendar day (2023-02-30 does
-- not; year 0000 is refused as outside ISO 8601's basic range). Returns
-- y, m, d or nil.
function M.parse_date(s)
  if type(s) ~= "string" then
    return nil
  end
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then
    return nil
  end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if y < 1 or m < 1 or m > 12 or d < 1 or d > M.days_in_month(y, m) then
    return nil
  end
  return y, m, d
end

-- Formats integer milliseconds since the epoch.
function M.format(ms)
  local days = ms // MS_PER_DAY
  local rest = ms - days * MS_PER_DAY
  local y, m, d = civil_from_days(days)
  local s = rest // 1000
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
    y, m, d, s // 3600, s // 60 % 60, s % 60, rest % 1000)
end

-- Parses what M.format produces. Returns integer milliseconds or nil.
function M.parse(s)
  if type(s) ~= "string" then
    return nil
  end
  local date, hh, mi, ss, ms =
    s:match("^(%d%d%d%d%-%d%d%-%d%d)T(%d%d):(%d%d):(%d%d)%.(%d%d%d)Z$")
  if not date then
    return nil
  end
  local y, m, d = M.parse_date(date)
  hh, mi, ss, ms = tonumber(hh), tonumber(mi), tonumber(ss), tonumber(ms)
  if not y or hh > 23 or mi > 59 or ss > 59 then
    return nil
  end
  return days_from_civil(y, m, d) * MS_PER_DAY
    + ((hh * 60 + mi) * 60 + ss) * 1000 + ms
end

-- Integer milliseconds from core.now()'s float seconds. Rounded, not
-- truncated: 1764331200.123 is stored as 1764331200.1229999 and must still
-- read as .123.
function M.ms_from_seconds(seconds)
  return math.floor(seconds * 1000 + 0.5)
end

return M
