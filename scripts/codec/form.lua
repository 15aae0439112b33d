-- The application/x-www-form-urlencoded request bodies of OMA NC Appendix C,
-- mapped onto the normalised values of codec/representation (nc/types.lua):
--
--   C.1 channel creation: clientCorrelator, applicationTag, channelType,
--       maxNotifications, channelLifetime as in the table, plus appId as in
--       the C.1.2 example and maxWaitTime (both LongPollingData/OMAPushData
--       elements, 5.2.2.6/7). The channel data parameters become
--       channelData; there is none when no such parameter is sent.
--   C.2 long poll: longPollingRequestParameters with an empty value, or
--       nothing at all. The C.2 examples spell it
--       "longPollingRequestParmeters"; that spelling is accepted too.
--
-- Errors name the form parameter as sent (SVC0002 "maxNotifications"), which
-- is also the element name. Names and values are decoded as query strings
-- are (codec/query): "+" is a space, %XX a byte.
local errors = require("codec.errors")
local query = require("codec.query")

local M = {}

M.MEDIA_TYPE = "application/x-www-form-urlencoded"

-- parameter -> { kind, where } for channel creation; where "channel" is the
-- notificationChannel itself, "data" its channelData.
local CREATE = {
  clientCorrelator = { "string", "channel" },
  applicationTag = { "string", "channel" },
  channelType = { "string", "channel" },
  channelLifetime = { "int", "channel" },
  maxNotifications = { "int", "data" },
  maxWaitTime = { "int", "data" },
  appId = { "string", "data" },
}

local POLL = {
  longPollingRequestParameters = true,
  longPollingRequestParmeters = true, -- sic, OMA NC C.2.1.1 and C.2.2.1
}

-- Parses `body` into name -> value, refusing a repeated name (which value
-- would the client mean?) with SVC0002 naming it.
local function params_of(body)
  local params, err = query.parse((body:gsub("[\r\n]", "")))
  if not params then
    return nil, err
  end
  local out = {}
  for name, list in pairs(params) do
    if #list > 1 then
      return nil, errors.new("SVC0002", name)
    end
    out[name] = list[1]
  end
  return out
end

local function sorted_names(params)
  local names = {}
  for name in pairs(params) do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

local function decode_channel(params)
  local scalar = require("codec.representation").scalar
  local channel, data = {}, nil
  for _, name in ipairs(sorted_names(params)) do
    local spec = CREATE[name]
    if not spec then
      return nil, errors.new("SVC0002", name)
    end
    local value, err = scalar(spec[1], params[name], name)
    if err then
      return nil, err
    end
    if spec[2] == "data" then
      data = data or {}
      data[name] = value
    else
      channel[name] = value
    end
  end
  if channel.channelType == nil then
    return nil, errors.new("SVC0002", "channelType")
  end
  if data then
    -- Only the elements of this channel type's data (5.2.2.6, 5.2.2.7, ...).
    local types = require("nc.types")
    local allowed = {}
    for _, f in ipairs(types.fields((types.channel_data(channel.channelType)))) do
      allowed[f.name] = true
    end
    for _, name in ipairs(sorted_names(data)) do
      if not allowed[name] then
        return nil, errors.new("SVC0002", name)
      end
    end
  end
  channel.channelData = data
  return channel
end

-- The normalised value of the form `body` for the root element `root`, or
-- nil and an error: SVC0002 naming the parameter, or 415 SVC3002 for a root
-- Appendix C defines no form for.
function M.decode(body, root)
  local params, err = params_of(body)
  if not params then
    return nil, err
  end
  if root == "notificationChannel" then
    return decode_channel(params)
  elseif root == "longPollingRequestParameters" then
    for _, name in ipairs(sorted_names(params)) do
      if not POLL[name] then
        return nil, errors.new("SVC0002", name)
      end
    end
    return {}
  end
  return nil, errors.new("SVC3002", M.MEDIA_TYPE, "application/json, application/xml")
end

return M
