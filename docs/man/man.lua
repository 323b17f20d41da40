-- SPDX-License-Identifier: Apache-2.0
-- pandoc filter: a manual page from a header (docs/man/<page>.md: NAME, SYNOPSIS, a DESCRIPTION
-- heading, then FILES / SEE ALSO ...) and the documentation page its metadata `man-body:` names
-- (a docs/*.md file), so the manual page is that page and cannot drift from it.
--   man-body: ../cli.md          the page, relative to the header
--   man-docdir: /usr/share/doc/P  where the packaged docs are: a link to x.md becomes that path
-- The body's title (its first level-1 heading) is dropped, its headings are lifted so that its
-- highest level becomes .SH, and its blocks go right after the header's DESCRIPTION heading.

-- Links between the docs: these pages are manual pages themselves.
local manpages = {
  ["cli.md"] = "molt(1)",
  ["configuration.md"] = "molt.yaml(5)",
  ["molt-artifact.md"] = "molt-artifact(1)",
  ["molt-module-test.md"] = "molt-module-test(1)",
}

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

local function read_body(meta)
  local input = PANDOC_STATE.input_files[1]
  local path = dirname(input) .. "/" .. pandoc.utils.stringify(meta["man-body"])
  local f = io.open(path, "r")
  if not f then
    error("man.lua: cannot read the body " .. path)
  end
  local text = f:read("a")
  f:close()
  return pandoc.read(text, "gfm").blocks
end

local function relink(docdir)
  return {
    Link = function(l)
      local target = l.target
      if target:match("^%a[%w+.-]*:") then
        return nil -- http(s), mailto: pandoc shows the address
      end
      local file = target:match("^([%w._-]+%.md)")
      local text = pandoc.utils.stringify(l.content)
      if file and manpages[file] then
        local page = manpages[file]
        if text == file or text == page then
          return pandoc.Strong(pandoc.Str(page))
        end
        return { pandoc.Span(l.content), pandoc.Str(" (" .. page .. ")") }
      elseif file and docdir then
        local path = docdir .. "/" .. target
        if text == file or text == target then
          return pandoc.Str(path)
        end
        return { pandoc.Span(l.content), pandoc.Str(" (" .. path .. ")") }
      end
      return l.content -- a file of the source tree: the text says what it is
    end,
  }
end

-- Tables become lists (.TP): tbl cannot fit the docs' wide tables into a terminal without
-- warnings. The first cell is the term; with two columns the second is its text, with more each
-- further cell is a paragraph "<column heading>: <cell>".
local function table_to_list(t)
  local heads = {}
  if #t.head.rows > 0 then
    for j, c in ipairs(t.head.rows[1].cells) do
      heads[j] = pandoc.utils.stringify(c.contents)
    end
  end
  local items = {}
  for _, body in ipairs(t.bodies) do
    for _, row in ipairs(body.body) do
      local cells = row.cells
      local term = pandoc.utils.blocks_to_inlines(cells[1].contents)
      local defs
      if #cells == 2 then
        defs = cells[2].contents
      else
        defs = {}
        for j = 2, #cells do
          local line = pandoc.List()
          local c = pandoc.utils.blocks_to_inlines(cells[j].contents)
          if #c > 0 then
            if heads[j] and heads[j] ~= "" then
              line:insert(pandoc.Emph({ pandoc.Str(heads[j] .. ":") }))
              line:insert(pandoc.Space())
            end
            line:extend(c)
            defs[#defs + 1] = pandoc.Para(line)
          end
        end
      end
      items[#items + 1] = { term, { defs } }
    end
  end
  return pandoc.DefinitionList(items)
end

function Pandoc(doc)
  local meta = doc.meta
  if not meta["man-body"] then
    error("man.lua: the header has no `man-body:`")
  end
  local body = read_body(meta)
  -- Drop the title.
  for i, b in ipairs(body) do
    if b.t == "Header" then
      if b.level == 1 then
        table.remove(body, i)
      end
      break
    end
  end
  local top = 99
  for _, b in ipairs(body) do
    if b.t == "Header" and b.level < top then
      top = b.level
    end
  end
  local docdir = meta["man-docdir"] and pandoc.utils.stringify(meta["man-docdir"]) or nil
  body = pandoc.walk_block(pandoc.Div(body), relink(docdir)).content
  body = pandoc.walk_block(pandoc.Div(body), { Table = table_to_list }).content
  local blocks, inserted = {}, false
  for _, b in ipairs(doc.blocks) do
    blocks[#blocks + 1] = b
    if b.t == "Header" and b.level == 1 and pandoc.utils.stringify(b.content) == "DESCRIPTION" then
      for _, x in ipairs(body) do
        if x.t == "Header" then
          x.level = x.level - top + 1
          if x.level == 1 then
            x.content = pandoc.walk_inline(pandoc.Span(x.content), {
              Str = function(s) return pandoc.Str(s.text:upper()) end,
              Code = function(c) return pandoc.Str(c.text:upper()) end,
            }).content
          end
        end
        blocks[#blocks + 1] = x
      end
      inserted = true
    end
  end
  if not inserted then
    error("man.lua: the header has no DESCRIPTION heading")
  end
  return pandoc.Pandoc(blocks, meta)
end
