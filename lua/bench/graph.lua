-- graph.lua: graph algorithms over a large directed graph (10^5 nodes,
-- ~3 * 10^5 edges at scale 1) that stays live for the whole run, next to
-- per-search temporaries.
-- Long-lived: one record per node (a mixed table: the array part is the
-- adjacency list, the hash part the node's cluster) and the planted clusters.
-- Mid-lived: the transposed graph (predecessor lists, dropped with an explicit
-- full collection once the dominators are known), the BFS levels.
-- Short-lived: DFS stacks, BFS queues, binary heaps, distance/parent arrays,
-- SCC and dominator-tree arrays, child lists, path tables, path strings and a
-- string-keyed name cache.
-- The graph is a DAG of planted strongly connected clusters (node ids
-- shuffled), so the SCC partition is known in advance. Edge weights are a
-- fixed hash of the endpoints.
--   SCC: iterative Tarjan and iterative Kosaraju, each checked against the
--        planted clusters and against each other; both numberings must be
--        topological orders of the condensation.
--   BFS levels from a root: consistent on every edge and reached from the
--        level above; unit-weight Dijkstra must reproduce them exactly.
--   Dijkstra (binary heap, lazy deletion) from the root and two nodes it
--        reaches: d[v] <= d[u] + w on every edge, tight on every parent edge,
--        every node settled once; shortest paths are rebuilt as strings of
--        node names, parsed back and weighed again.
--   Dominator tree (Cooper-Harvey-Kennedy) from the root: for sampled nodes
--        w, the nodes cut off from the root by deleting w must be exactly
--        w's dominator subtree.
-- A checksum over all results is also compared with fixed values for the
-- sizes of scales 1, 0.1, 0.05, 0.02 and below 0.015.
-- Usage: lua graph.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local format, concat, sub = string.format, table.concat, string.sub

local N = floor(100000 * scale)
if N < 1500 then N = 1500 end

-- deterministic Park-Miller generator: products stay below 2^53
local seed = 4242
local function rand(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

local MOD = 1000000007
local checksum = 0
local function mix(x)
  checksum = (checksum * 31 + x % MOD) % MOD
end

-- edge weights (1..100) are a fixed hash of the endpoints, not stored
local function W(u, v)
  return (u * 40503 + v * 9973) % 65521 % 100 + 1
end

---------------------------------------------------------------- the graph
-- shuffled node order, cut into clusters (singletons or 2..60 nodes)
local perm = {}
for i = 1, N do perm[i] = i end
for i = N, 2, -1 do
  local j = rand(i)
  perm[i], perm[j] = perm[j], perm[i]
end
local clusters = {}           -- clusters[c] = { member ids }
do
  local pos = 1
  while pos <= N do
    local size = 1
    if rand(4) > 1 then size = 1 + rand(59) end
    if pos + size - 1 > N then size = N - pos + 1 end
    local members = {}
    for k = 1, size do members[k] = perm[pos + k - 1] end
    clusters[#clusters + 1] = members
    pos = pos + size
  end
end
perm = nil
local C = #clusters

-- node record: { target1, target2, ...; cl = cluster }, the array part built
-- at its final size by a constructor (at most 4 edges per node)
local nodes = {}
local E = 0
local scratch, ns = {}, 0
local function add_edge(v)
  for k = 1, ns do
    if scratch[k] == v then return end          -- no parallel edges
  end
  ns = ns + 1
  scratch[ns] = v
  E = E + 1
end

local SPAN = 120              -- forward edges reach up to SPAN clusters ahead
for c = 1, C do
  local m = clusters[c]
  local s = #m
  for k = 1, s do
    local u = m[k]
    ns = 0
    if s > 1 then
      add_edge(m[k % s + 1])                        -- the cycle
      if rand(2) == 1 then
        local v = m[rand(s)]
        if v ~= u then add_edge(v) end
      end
    end
    if c < C then
      local ahead = C - c
      if ahead > SPAN then ahead = SPAN end
      for _ = 1, rand(2) do
        local t = clusters[c + rand(ahead)]
        add_edge(t[rand(#t)])
      end
    end
    local rec
    if ns <= 2 then
      if ns == 0 then rec = {} elseif ns == 1 then rec = { scratch[1] }
      else rec = { scratch[1], scratch[2] } end
    elseif ns == 3 then rec = { scratch[1], scratch[2], scratch[3] }
    elseif ns == 4 then rec = { scratch[1], scratch[2], scratch[3], scratch[4] }
    else error("graph: more than 4 edges on a node") end
    rec.cl = c
    nodes[u] = rec
  end
end
scratch = nil
local root = clusters[1][1]
mix(N); mix(E); mix(C)

---------------------------------------------------------------- helpers
local function filled(n, v)
  local t = {}
  for i = 1, n do t[i] = v end
  return t
end

-- predecessor lists (the transposed graph): a mid-lived structure built for
-- Kosaraju, the BFS check and the dominators, dropped once idom is known
local preds
local function transpose()
  local p = {}
  for v = 1, N do p[v] = {} end
  for u = 1, N do
    local adj = nodes[u]
    for e = 1, #adj do
      local list = p[adj[e]]
      list[#list + 1] = u                -- lists grow by appending
    end
  end
  return p
end

-- BFS from src; node `banned` (or 0) counts as deleted.
-- Returns the level array (-1 = unreached) and the number reached.
local function bfs(src, banned)
  local level = filled(N, -1)
  local queue = { src }
  level[src] = 0
  local head, tail = 1, 1
  while head <= tail do
    local u = queue[head]
    head = head + 1
    local lu = level[u] + 1
    local adj = nodes[u]
    for e = 1, #adj do
      local v = adj[e]
      if level[v] < 0 and v ~= banned then
        level[v] = lu
        tail = tail + 1
        queue[tail] = v
      end
    end
  end
  return level, tail
end

---------------------------------------------------------------- SCC: Tarjan
local function tarjan()
  -- a node is on the stack S while it has an index but no component yet
  local index, low, comp = filled(N, 0), filled(N, 0), filled(N, 0)
  local S, sp = {}, 0
  local cs_v, cs_e = {}, {}          -- explicit DFS stack: node, next edge
  local counter, ncomp = 0, 0
  for s = 1, N do
    if index[s] == 0 then
      counter = counter + 1
      index[s], low[s] = counter, counter
      sp = sp + 1; S[sp] = s
      local top = 1
      cs_v[1], cs_e[1] = s, 1
      while top > 0 do
        local v = cs_v[top]
        local adj = nodes[v]
        local e = cs_e[top]
        if e <= #adj then
          cs_e[top] = e + 1
          local w = adj[e]
          if index[w] == 0 then
            counter = counter + 1
            index[w], low[w] = counter, counter
            sp = sp + 1; S[sp] = w
            top = top + 1
            cs_v[top], cs_e[top] = w, 1
          elseif comp[w] == 0 and index[w] < low[v] then
            low[v] = index[w]
          end
        else
          if low[v] == index[v] then
            ncomp = ncomp + 1
            local w
            repeat
              w = S[sp]; S[sp] = nil; sp = sp - 1
              comp[w] = ncomp
            until w == v
          end
          top = top - 1
          if top > 0 then
            local u = cs_v[top]
            if low[v] < low[u] then low[u] = low[v] end
          end
        end
      end
    end
  end
  return comp, ncomp
end

---------------------------------------------------------------- SCC: Kosaraju
local function kosaraju()
  -- pass 1 marks visited nodes with comp = -1; pass 2 gives them components
  local comp, order, no = filled(N, 0), {}, 0
  local cs_v, cs_e = {}, {}
  for s = 1, N do
    if comp[s] == 0 then
      comp[s] = -1
      local top = 1
      cs_v[1], cs_e[1] = s, 1
      while top > 0 do
        local v = cs_v[top]
        local adj = nodes[v]
        local e = cs_e[top]
        if e <= #adj then
          cs_e[top] = e + 1
          local w = adj[e]
          if comp[w] == 0 then
            comp[w] = -1
            top = top + 1
            cs_v[top], cs_e[top] = w, 1
          end
        else
          no = no + 1
          order[no] = v
          top = top - 1
        end
      end
    end
  end
  cs_v, cs_e = nil, nil
  local ncomp = 0
  local stack = {}
  for k = N, 1, -1 do
    local s = order[k]
    if comp[s] < 0 then
      ncomp = ncomp + 1
      comp[s] = ncomp
      local sp = 1
      stack[1] = s
      while sp > 0 do
        local v = stack[sp]
        sp = sp - 1
        local inn = preds[v]
        for e = 1, #inn do
          local u = inn[e]
          if comp[u] < 0 then
            comp[u] = ncomp
            sp = sp + 1
            stack[sp] = u
          end
        end
      end
    end
  end
  return comp, ncomp
end

-- every planted cluster must be exactly one component
local function check_partition(comp, ncomp, who)
  if ncomp ~= C then error(format("graph: %s found %d SCCs, planted %d", who, ncomp, C)) end
  local seen = {}
  for c = 1, C do
    local m = clusters[c]
    local id = comp[m[1]]
    if seen[id] then error(format("graph: %s merged two clusters", who)) end
    seen[id] = true
    for k = 2, #m do
      if comp[m[k]] ~= id then error(format("graph: %s split cluster %d", who, c)) end
    end
  end
end

-- both numberings must be topological orders of the condensation (Tarjan
-- completes sinks first: edges go to smaller ids; Kosaraju numbers sources
-- first: edges go to larger ids)
local function check_topological(comp, down, who)
  for v = 1, N do
    local a = comp[v]
    local adj = nodes[v]
    for e = 1, #adj do
      local b = comp[adj[e]]
      if (down and b > a) or (not down and b < a) then
        error(format("graph: %s order not topological", who))
      end
    end
  end
end

local tcl = {}                -- Tarjan's component id of each planted cluster
do
  local comp, n = tarjan()
  check_partition(comp, n, "tarjan")
  check_topological(comp, true, "tarjan")
  for c = 1, C do tcl[c] = comp[clusters[c][1]] end
  local largest = 0
  for c = 1, C do if #clusters[c] > largest then largest = #clusters[c] end end
  mix(n); mix(largest); mix(comp[root])
end
preds = transpose()
do
  local comp, n = kosaraju()
  check_partition(comp, n, "kosaraju")
  check_topological(comp, false, "kosaraju")
  -- the same partition both ways: cluster -> (Tarjan id, Kosaraju id) is a bijection
  local k2t = {}
  for c = 1, C do
    local kid = comp[clusters[c][1]]
    if k2t[kid] ~= nil then error("graph: tarjan and kosaraju disagree") end
    k2t[kid] = tcl[c]
  end
  for c = 1, C do
    if k2t[comp[clusters[c][1]]] ~= tcl[c] then error("graph: tarjan and kosaraju disagree") end
  end
  mix(comp[root])
end
tcl = nil

---------------------------------------------------------------- BFS levels
-- consistent on every edge, and every reached node has a predecessor one level up
local level, nreach = bfs(root, 0)
do
  local maxlevel = 0
  for u = 1, N do
    local lu = level[u]
    if lu >= 0 then
      if lu > maxlevel then maxlevel = lu end
      local adj = nodes[u]
      for e = 1, #adj do
        local lv = level[adj[e]]
        if lv < 0 or lv > lu + 1 then error("graph: BFS level not consistent on an edge") end
      end
      if u ~= root then
        local tight = false
        local inn = preds[u]
        for e = 1, #inn do
          if level[inn[e]] == lu - 1 then tight = true; break end
        end
        if not tight then error("graph: BFS level has no parent") end
      end
    end
  end
  mix(nreach); mix(maxlevel)
end

---------------------------------------------------------------- dominators
do
  -- postorder of the nodes reachable from root (iterative DFS)
  -- po[v] = -1 while v is on the DFS stack, its postorder number once done
  local po, order, R = filled(N, 0), {}, 0
  local cs_v, cs_e = {}, {}
  po[root] = -1
  local top = 1
  cs_v[1], cs_e[1] = root, 1
  while top > 0 do
    local v = cs_v[top]
    local adj = nodes[v]
    local e = cs_e[top]
    if e <= #adj then
      cs_e[top] = e + 1
      local w = adj[e]
      if po[w] == 0 then
        po[w] = -1
        top = top + 1
        cs_v[top], cs_e[top] = w, 1
      end
    else
      R = R + 1
      po[v], order[R] = R, v
      top = top - 1
    end
  end
  cs_v, cs_e = nil, nil
  if R ~= nreach then error("graph: DFS and BFS reach different node counts") end

  -- Cooper-Harvey-Kennedy: iterate idom over reverse postorder to a fixpoint
  local idom = filled(N, 0)
  idom[root] = root
  local passes, changed = 0, true
  while changed do
    changed = false
    passes = passes + 1
    if passes > 200 then error("graph: dominators do not converge") end
    for k = R - 1, 1, -1 do
      local v = order[k]
      local new = 0
      local inn = preds[v]
      for e = 1, #inn do
        local p = inn[e]
        if idom[p] ~= 0 then
          if new == 0 then
            new = p
          else
            local a, b = p, new
            while a ~= b do
              while po[a] < po[b] do a = idom[a] end
              while po[b] < po[a] do b = idom[b] end
            end
            new = a
          end
        end
      end
      if idom[v] ~= new then
        -- the DFS parent is a predecessor finished later, so idom[v] must be too
        if po[new] <= po[v] then error("graph: dominator candidate finished too early") end
        idom[v] = new
        changed = true
      end
    end
  end

  -- the transposed graph is not needed any more; collect it at once (a full
  -- cycle over the big live graph) so the rest runs on the smaller heap
  preds, po = nil, nil
  collectgarbage("collect")

  -- dominator tree: child lists, preorder intervals [pre, last]; the depth
  -- of the node on top of the traversal stack is top - 1
  local kids = {}
  for k = 1, R - 1 do
    local v = order[k]
    local d = idom[v]
    local list = kids[d]
    if list == nil then list = {}; kids[d] = list end
    list[#list + 1] = v
  end
  local pre, last = filled(N, 0), filled(N, 0)
  local counter, maxdepth, deepest, leaves = 1, 0, root, 0
  local st_v, st_i = { root }, { 0 }
  pre[root] = 1
  top = 1
  while top > 0 do
    local v = st_v[top]
    local list = kids[v]
    local i = st_i[top] + 1
    if list and i <= #list then
      st_i[top] = i
      local c = list[i]
      counter = counter + 1
      pre[c] = counter
      if top > maxdepth then maxdepth, deepest = top, c end
      top = top + 1
      st_v[top], st_i[top] = c, 0
    else
      if list == nil then leaves = leaves + 1 end
      last[v] = counter
      top = top - 1
    end
  end
  kids = nil
  if counter ~= R then error("graph: dominator tree does not span the reachable nodes") end
  mix(maxdepth); mix(leaves)

  -- check: deleting w cuts off from the root exactly w's dominator subtree.
  -- Candidates: the node with the largest subtree, the parent of the deepest
  -- node, and two random reachable nodes.
  local cand = {}
  local best, bestsize = order[1], 0
  for k = 1, R - 1 do
    local v = order[k]
    local size = last[v] - pre[v] + 1
    if size > bestsize then best, bestsize = v, size end
  end
  cand[1] = best
  cand[2] = idom[deepest]
  cand[3] = order[rand(R)]
  cand[4] = order[rand(R)]
  order, idom = nil, nil
  for ci = 1, #cand do
    local w = cand[ci]
    if w ~= root then
      local lvl = bfs(root, w)
      local cut = 0
      local pw, lw = pre[w], last[w]
      for v = 1, N do
        if level[v] >= 0 then
          local dominated = lvl[v] < 0
          local pv = pre[v]
          if dominated ~= (pv >= pw and pv <= lw) then
            error(format("graph: dominator check failed for w=%d v=%d", w, v))
          end
          if dominated then cut = cut + 1 end
        end
      end
      mix(cut)
    end
  end
  mix(passes); mix(bestsize)
end

---------------------------------------------------------------- Dijkstra
local INF = 2 ^ 52
-- unit: every edge weighs 1 (must reproduce the BFS levels)
local function dijkstra(src, unit)
  local dist, parent = filled(N, INF), filled(N, 0)
  local hk, hv, n = {}, {}, 0            -- binary min-heap of (key, node), lazy deletion
  dist[src] = 0
  n = 1; hk[1], hv[1] = 0, src
  local pops = 0
  while n > 0 do
    local d, u = hk[1], hv[1]
    -- pop: move the last entry to the root and sift it down
    local lk, lv = hk[n], hv[n]
    hk[n], hv[n] = nil, nil
    n = n - 1
    if n > 0 then
      local i = 1
      while true do
        local c = i + i
        if c > n then break end
        if c < n and hk[c + 1] < hk[c] then c = c + 1 end
        if hk[c] >= lk then break end
        hk[i], hv[i] = hk[c], hv[c]
        i = c
      end
      hk[i], hv[i] = lk, lv
    end
    if d == dist[u] then
      pops = pops + 1
      local adj = nodes[u]
      for e = 1, #adj do
        local v = adj[e]
        local nd = d + (unit and 1 or W(u, v))
        if nd < dist[v] then
          dist[v] = nd
          parent[v] = u
          -- push and sift up
          n = n + 1
          local i = n
          while i > 1 do
            local p = floor(i / 2)
            if hk[p] <= nd then break end
            hk[i], hv[i] = hk[p], hv[p]
            i = p
          end
          hk[i], hv[i] = nd, v
        end
      end
    end
  end
  return dist, parent, pops
end

local function has_edge(u, v)
  local adj = nodes[u]
  for e = 1, #adj do
    if adj[e] == v then return true end
  end
  return false
end

local function check_dijkstra(src, dist, parent, unit)
  local reached, sum = 0, 0
  for u = 1, N do
    local du = dist[u]
    if du < INF then
      reached = reached + 1
      sum = sum + du
      local adj = nodes[u]
      for e = 1, #adj do
        local v = adj[e]
        if dist[v] > du + (unit and 1 or W(u, v)) then
          error(format("graph: dijkstra from %d: edge %d->%d not relaxed", src, u, v))
        end
      end
      if u == src then
        if du ~= 0 then error("graph: dijkstra source distance") end
      else
        local p = parent[u]
        if not has_edge(p, u) or dist[p] + (unit and 1 or W(p, u)) ~= du then
          error(format("graph: dijkstra from %d: parent edge of %d not tight", src, u))
        end
      end
    end
  end
  return reached, sum
end

-- the path to target as a string of node names "v12 > v7 > ..."
local function path_string(src, target, parent)
  local rev = {}
  local v = target
  while v ~= src do
    rev[#rev + 1] = "v" .. v
    v = parent[v]
  end
  rev[#rev + 1] = "v" .. src
  local path = {}
  for i = #rev, 1, -1 do path[#path + 1] = rev[i] end
  return concat(path, " > "), #path - 1
end

-- parse a path string back (names resolved through a string-keyed cache) and weigh it
local function weigh_path(s, cache)
  local total, hops, prev = 0, 0, nil
  for name in s:gmatch("[^ >]+") do
    local id = cache[name]
    if id == nil then
      id = tonumber(sub(name, 2))
      if id == nil or nodes[id] == nil then error("graph: bad node name " .. name) end
      cache[name] = id
    end
    if prev then
      if not has_edge(prev, id) then error("graph: path uses a missing edge") end
      total = total + W(prev, id)
      hops = hops + 1
    end
    prev = id
  end
  return total, hops
end

-- sources for the weighted runs: the root and nodes it reaches
local sources = { root }
while #sources < 3 do
  local s = rand(N)
  if level[s] >= 0 then sources[#sources + 1] = s end
end

-- unit-weight Dijkstra must reproduce the BFS levels
do
  local ud, up = dijkstra(root, true)
  check_dijkstra(root, ud, up, true)
  for u = 1, N do
    local want = level[u] < 0 and INF or level[u]
    if ud[u] ~= want then error("graph: unit dijkstra differs from BFS") end
  end
end
level = nil

local paths_checked = 0
for si = 1, #sources do
  local src = sources[si]
  local dist, parent, pops = dijkstra(src, false)
  local reached, sum = check_dijkstra(src, dist, parent, false)
  -- (relaxed edges + tight parent edges already make the reached set exactly
  -- the set reachable from src; each of them is settled once)
  if pops ~= reached then error("graph: dijkstra settled a node twice") end
  if src == root and reached ~= nreach then error("graph: dijkstra and BFS reach different sets") end
  mix(reached); mix(sum)
  -- some shortest paths as strings, parsed back and weighed again
  local strings, cache = {}, {}
  local tries = 0
  while #strings < 40 and tries < 400 do
    tries = tries + 1
    local t = rand(N)
    if dist[t] < INF and t ~= src then
      local s, hops = path_string(src, t, parent)
      local total, h2 = weigh_path(s, cache)
      if total ~= dist[t] or h2 ~= hops then error("graph: path string weighs wrong") end
      strings[#strings + 1] = s
      mix(total); mix(#s)
      paths_checked = paths_checked + 1
    end
  end
end

---------------------------------------------------------------- final checks
-- the long-lived structure must be intact at the end
do
  local e2 = 0
  for c = 1, C do
    local m = clusters[c]
    for k = 1, #m do
      local rec = nodes[m[k]]
      if rec.cl ~= c then error("graph: node record lost its cluster") end
      e2 = e2 + #rec
    end
  end
  if e2 ~= E then error("graph: edge count changed") end
end

-- fixed checksums for the sizes of scales 1, 0.1, 0.05, 0.02 and <= 0.015
local KNOWN = { [100000] = 808543748, [10000] = 613185878, [5000] = 583578759,
                [2000] = 788332308, [1500] = 277388179 }
if KNOWN[N] and KNOWN[N] ~= checksum then
  error(format("graph: checksum %.0f, expected %.0f", checksum, KNOWN[N]))
end

print(format("graph ok: %d nodes, %d edges, %d SCCs, %d reachable, %d paths, checksum %.0f",
  N, E, C, nreach, paths_checked, checksum))
