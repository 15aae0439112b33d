local errors = require("codec.errors")
local json = require("codec.json")
local response = require("http.response")

describe("http.response", function()
  it("builds a JSON response without touching the given headers", function()
    local headers = { Location = "http://x/1" }
    local res = response.json(201, { a = "b/c" }, headers)
    assert.equal(201, res.status)
    assert.equal('{"a":"b/c"}', res.body)
    assert.same({ Location = "http://x/1", ["Content-Type"] = "application/json" }, res.headers)
    assert.same({ Location = "http://x/1" }, headers)
  end)

  it("builds an OMA error response with the error's status", function()
    local res = response.error(errors.new("SVC3001", "PUT", "GET, POST"), { Allow = "GET, POST" })
    assert.equal(405, res.status)
    assert.equal("GET, POST", res.headers.Allow)
    assert.same({ requestError = { serviceException = {
      messageId = "SVC3001", text = "Method %1 not allowed, allowed methods are %2",
      variables = { "PUT", "GET, POST" } } } }, json.decode(res.body))
  end)

  it("builds a 204 with no body and no Content-Type", function()
    assert.same({ status = 204, headers = {}, body = "" }, response.no_content())
  end)
end)
