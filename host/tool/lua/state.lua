-- The program of one state in the states scenario of `lmem bench`: what a small plugin or
-- request handler holds: a few functions, a few tables and a few KiB of data, checked once.
local M = {}

M.config = {
  name = "handler", version = 3,
  limits = { depth = 8, size = 4096, timeout = 2.5 },
  fields = {},
}
for i = 1, 16 do M.config.fields[i] = "field_" .. i end

function M.greet(who) return "hello, " .. who end
function M.sum(t) local s = 0 for i = 1, #t do s = s + t[i] end return s end
function M.map(t, f) local r = {} for i = 1, #t do r[i] = f(t[i]) end return r end
function M.find(name)
  for _, item in ipairs(M.items) do
    if item.name == name then return item end
  end
end

M.items = {}
for i = 1, 16 do
  M.items[i] = { id = i, name = "item" .. i, price = i * 1.25, tags = { "t" .. i % 3, "new" } }
end
M.text = string.rep("lmem ", 100) -- 500 bytes

local squares = M.map({ 1, 2, 3, 4, 5, 6, 7, 8 }, function(x) return x * x end)
assert(M.sum(squares) == 204)
assert(M.greet("lua") == "hello, lua")
assert(M.find("item7").price == 8.75)
handler = M
