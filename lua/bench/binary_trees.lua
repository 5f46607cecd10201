-- binary_trees.lua: allocate and drop many binary trees of several depths.
-- A long-lived tree stays reachable for the whole run while short-lived
-- trees of depths 4..MAXD are built, walked and discarded: GC-heavy churn of
-- small 3-slot tables over a steadily sized live heap.
-- Usage: lua binary_trees.lua [scale]   (scale multiplies the work; default 1)

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor

-- Nodes carry their heap index: root 1, children 2i and 2i+1.
local function build(idx, depth)
  if depth == 0 then
    return { idx }
  end
  return { idx, build(idx * 2, depth - 1), build(idx * 2 + 1, depth - 1) }
end

-- Returns (node count, sum of indices).
local function walk(node)
  local l = node[2]
  if l == nil then
    return 1, node[1]
  end
  local c1, s1 = walk(l)
  local c2, s2 = walk(node[3])
  return c1 + c2 + 1, s1 + s2 + node[1]
end

-- A complete tree of depth d holds indices 1 .. 2^(d+1)-1.
local function expected(depth)
  local n = 2 ^ (depth + 1) - 1
  return n, n * (n + 1) / 2
end

-- small scales (quick test runs) also use a smaller long-lived tree
local MAXD = scale < 0.25 and 12 or 14
local long_lived = build(1, MAXD)

local budget = floor(3600000 * scale)      -- nodes to allocate in short-lived trees
if budget < 5000 then budget = 5000 end
local total_nodes = 0
local rounds = 0

for depth = 4, MAXD - 2, 2 do
  local nodes_per_tree = 2 ^ (depth + 1) - 1
  local iters = floor(budget / 5 / nodes_per_tree)
  if iters < 1 then iters = 1 end
  local want_c, want_s = expected(depth)
  for _ = 1, iters do
    local t = build(1, depth)
    local c, s = walk(t)
    if c ~= want_c or s ~= want_s then
      error(string.format("binary_trees: depth %d gave count %d sum %.0f", depth, c, s))
    end
    total_nodes = total_nodes + c
    rounds = rounds + 1
  end
  -- a mid-lived batch: keep a few trees at once so the live heap fluctuates
  local keep = {}
  for i = 1, 8 do keep[i] = build(i, depth) end
  for i = 1, 8 do
    local c = walk(keep[i])
    if c ~= want_c then error("binary_trees: mid-lived tree damaged") end
    keep[i] = nil
  end
end

local lc, ls = walk(long_lived)
local wc, ws = expected(MAXD)
if lc ~= wc or ls ~= ws then
  error("binary_trees: long-lived tree damaged")
end

print(string.format("binary_trees ok: %d trees, %d nodes, long-lived depth %d",
  rounds, total_nodes, MAXD))
