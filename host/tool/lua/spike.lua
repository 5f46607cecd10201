-- The trim scenario of `lmem bench`: the RSS of this process before a spike of Lua data, at
-- the spike, after the data is freed and fully collected (until Lua's own count stops falling), and after `lmem.trim()` (when the
-- `lmem` module is there: not on stock Lua). Prints one line of JSON.
-- arg[1]: MiB of Lua data to build (tables and strings); arg[2]: the page size in bytes.
local mib = tonumber(arg[1]) or 200
local page = tonumber(arg[2]) or 4096

local function rss()
  local f = assert(io.open("/proc/self/statm"))
  local line = f:read("*l")
  f:close()
  return tonumber(line:match("^%S+%s+(%d+)")) * page
end

local has_lmem, lmem = pcall(require, "lmem")
collectgarbage()
collectgarbage()
local before = rss()

-- Records of a few small tables and strings each, short and long, until Lua counts `mib` MiB.
local data, i = {}, 0
while collectgarbage("count") < mib * 1024 do
  for _ = 1, 1000 do
    i = i + 1
    data[i] = {
      id = i,
      name = "n" .. i,
      payload = string.rep(string.char(65 + i % 26), 24 + i % 200),
      list = { i, i + 1, i + 2 },
    }
  end
end
local lua_kib = collectgarbage("count")
local spike = rss()

-- Collect until Lua's own count stops falling: Lua halves an oversized string table once per
-- cycle, so two cycles would leave megabytes of Lua's own (live) memory and measure that rather
-- than what the allocator keeps.
data = nil
local last = math.huge
for _ = 1, 30 do
  collectgarbage()
  local now = collectgarbage("count")
  if now >= last then break end
  last = now
end
local collected = rss()

local trimmed = "null"
if has_lmem then
  lmem.trim()
  trimmed = string.format("%.0f", rss())
end
print(string.format(
  '{"before":%.0f,"spike":%.0f,"collected":%.0f,"trimmed":%s,"lua_kib":%.0f,"records":%d}',
  before, spike, collected, trimmed, lua_kib, i))
