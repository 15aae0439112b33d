local percent = require("codec.percent")

describe("codec.percent", function()
  it("decodes escapes in either case", function()
    assert.equal("tel:+19585550100", percent.decode("tel%3A%2B19585550100"))
    assert.equal("acr:a/b", percent.decode("acr%3aa%2fb"))
    assert.equal("plain", percent.decode("plain"))
  end)

  it("leaves + alone in paths", function()
    assert.equal("a+b", percent.decode("a+b"))
  end)

  for _, bad in ipairs({ "%", "%4", "a%zz", "%4g", "%%41", "x%" }) do
    it("refuses the broken escape " .. bad, function()
      local v, err = percent.decode(bad)
      assert.is_nil(v)
      assert.is_string(err)
    end)
  end

  it("encodes all but the unreserved characters", function()
    assert.equal("tel%3A%2B19585550100", percent.encode("tel:+19585550100"))
    assert.equal("a-b.c_d~e", percent.encode("a-b.c_d~e"))
    assert.equal("%2F%20%25%C3%A9", percent.encode("/ %é"))
  end)

  it("round-trips every byte", function()
    local bytes = {}
    for b = 0, 255 do
      bytes[#bytes + 1] = string.char(b)
    end
    local s = table.concat(bytes)
    assert.equal(s, percent.decode(percent.encode(s)))
  end)
end)
