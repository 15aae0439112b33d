local xml = require("codec.xml")

describe("codec.xml", function()
  describe("parse", function()
    it("builds a tree with prefixes, namespaces, attributes in order and merged text", function()
      local root = assert(xml.parse('<?xml version="1.0"?><p:a xmlns:p="urn:p" x="1" p:y="2">'
        .. 'one<b xmlns="urn:d">two</b>&amp;three<![CDATA[<four>]]></p:a>'))
      assert.equal("p:a", root.name)
      assert.equal("p", root.prefix)
      assert.equal("a", root.localname)
      assert.equal("urn:p", root.ns)
      assert.same({ { name = "xmlns:p", value = "urn:p" }, { name = "x", value = "1" },
        { name = "p:y", value = "2" } }, root.attrs)
      assert.equal(3, #root.children)
      assert.equal("one", root.children[1])
      assert.equal("urn:d", root.children[2].ns)
      assert.is_nil(root.children[2].prefix)
      assert.equal("&three<four>", root.children[3])
      assert.equal("one&three<four>", xml.text(root))
      assert.equal(1, #xml.elements(root))
      assert.equal("2", xml.attribute(root, "urn:p", "y"))
      assert.is_nil(xml.attribute(root, "urn:p", "x"))
    end)

    it("undeclares the default namespace with xmlns=\"\"", function()
      local root = assert(xml.parse('<a xmlns="urn:d"><b xmlns=""/><c/></a>'))
      assert.equal("urn:d", root.ns)
      assert.is_nil(root.children[1].ns)
      assert.equal("urn:d", root.children[2].ns)
    end)

    it("resolves QName values in the element's scope", function()
      local root = assert(xml.parse('<a xmlns:n="urn:n" xmlns="urn:d"><b t=" n:T "/></a>'))
      local b = root.children[1]
      assert.same({ "urn:n", "T" }, { xml.resolve_qname(b, b.attrs[1].value) })
      assert.same({ "urn:d", "T" }, { xml.resolve_qname(b, "T") })
      assert.is_nil(xml.resolve_qname(b, "zz:T"))
      assert.is_nil(xml.resolve_qname(b, "a:b:c"))
    end)

    local bad = {
      ["unbound element prefix"] = "<p:a/>",
      ["unbound attribute prefix"] = "<a p:x='1'/>",
      ["empty prefix binding"] = "<a xmlns:p=''/>",
      ["two colons"] = "<a:b:c xmlns:a='urn:a'/>",
      ["rebinding xml"] = "<a xmlns:xml='urn:x'/>",
      ["a DOCTYPE"] = "<!DOCTYPE a><a/>",
      ["no root"] = "<?xml version='1.0'?>",
      ["not XML"] = "hello",
      ["nesting too deep"] = string.rep("<a>", 65) .. string.rep("</a>", 65),
    }
    for what, text in pairs(bad) do
      it("refuses " .. what .. " with SVC0001", function()
        local v, err = xml.parse(text)
        assert.is_nil(v)
        assert.equal("SVC0001", err.id)
        assert.matches("^malformed XML", err.variables[1])
      end)
    end

    it("accepts nesting up to the limit", function()
      assert.is_table(xml.parse(string.rep("<a>", 64) .. string.rep("</a>", 64)))
    end)

    it("refuses a non-string without raising", function()
      local v, err = xml.parse(nil)
      assert.is_nil(v)
      assert.equal("SVC0001", err.id)
    end)

    it("refuses a large internal entity referenced many times", function()
      -- The entity is declared in the internal subset, which the DOCTYPE
      -- check refuses before expat expands anything.
      local text = '<!DOCTYPE a [<!ENTITY e "' .. string.rep("x", 1000) .. '">]><a>'
        .. string.rep("&e;", 100000) .. "</a>"
      local v, err = xml.parse(text)
      assert.is_nil(v)
      assert.equal("SVC0001", err.id)
    end)
  end)

  describe("escape", function()
    it("escapes markup in text and keeps carriage returns", function()
      assert.equal("a&lt;b&gt;c&amp;d\"'&#13;\n", xml.escape("a<b>c&d\"'\r\n"))
    end)

    it("escapes quotes and whitespace in attributes", function()
      assert.equal("&quot;&lt;&amp;&gt;&#9;&#10;&#13;'", xml.escape_attr("\"<&>\t\n\r'"))
    end)

    it("replaces characters XML cannot carry", function()
      assert.equal("a\u{FFFD}b\u{FFFD}", xml.escape("a\0b\27"))
      assert.equal("\u{FFFD}", xml.escape_attr("\8"))
    end)

    it("round-trips through the parser", function()
      local s = "<&>\"' \t\r\n x"
      local root = assert(xml.parse('<a v="' .. xml.escape_attr(s) .. '">' .. xml.escape(s) .. "</a>"))
      assert.equal(s, root.attrs[1].value)
      assert.equal(s, xml.text(root))
    end)
  end)

  describe("name", function()
    it("makes JSON keys into element names", function()
      assert.equal("abc", xml.name("abc"))
      assert.equal("a_b", xml.name("a b"))
      assert.equal("_1x", xml.name("1x"))
      assert.equal("_", xml.name(""))
    end)
  end)

  describe("serialize", function()
    it("declares the inherited namespaces so an element stands alone", function()
      local root = assert(xml.parse('<nc:l xmlns:nc="urn:nc" xmlns:xsi="urn:xsi" xmlns="urn:d">'
        .. '<p:n xmlns:p="urn:p" xsi:type="nc:T"><c a="&amp;">x &lt; y</c><e/></p:n></nc:l>'))
      local text = xml.serialize(root.children[1])
      assert.equal('<p:n xmlns="urn:d" xmlns:nc="urn:nc" xmlns:xsi="urn:xsi" xmlns:p="urn:p"'
        .. ' xsi:type="nc:T"><c a="&amp;">x &lt; y</c><e/></p:n>', text)
      local again = assert(xml.parse(text))
      assert.equal("urn:p", again.ns)
      assert.equal("urn:d", again.children[1].ns)
      assert.same({ "urn:nc", "T" }, { xml.resolve_qname(again, "nc:T") })
    end)

    it("writes a parsed document back equal to itself", function()
      local text = '<a xmlns="urn:a" k="v">t<b>&lt;</b><c/>u</a>'
      assert.equal(text, xml.serialize(assert(xml.parse(text))))
    end)
  end)
end)
