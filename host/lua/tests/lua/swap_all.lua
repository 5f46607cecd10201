-- host/tests/lua/swap_all.lua: hot swap through every backend named in arg, mid-script, with
-- live data made on each one kept alive and checked at the end.
local lmem = require "lmem"
local keep = {}
local function work(tag)
  local t = {}
  for i = 1, 2000 do t[i] = { tag, i, tag .. i } end
  keep[#keep + 1] = t
  local s = {}
  for i = 1, 200 do s[#s + 1] = string.rep(tag, i % 17 + 1) end
  keep[#keep + 1] = table.concat(s)
end
work("start")
for _, name in ipairs(arg) do
  local ok, err = lmem.swap(name)
  assert(ok, err)
  assert(lmem.backend() == name, lmem.backend())
  work(name)
  collectgarbage()
end
-- everything made on earlier backends is still intact
for i = 1, #keep, 2 do
  local t = keep[i]
  for j = 1, 2000, 97 do assert(t[j][2] == j and t[j][3] == t[j][1] .. j) end
end
keep = nil
collectgarbage()
print("ok swap_all " .. lmem.stats().swaps)
