-- host/tests/lua/tiny_sweep.lua: fallback for the fault sweep when lua/tests/oom_sweep.lua is
-- not there: a few allocations of each kind.
local t = {}
for i = 1, 20 do t[i] = { i, tostring(i) } end
local s = table.concat({ "a", "b", string.rep("c", 50) }, ",")
local co = coroutine.wrap(function(x) coroutine.yield(x + 1) end)
assert(co(1) == 2 and #s > 50)
print("ok tiny_sweep")
