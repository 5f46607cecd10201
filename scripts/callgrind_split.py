#!/usr/bin/env python3
"""Splits the instructions of a callgrind profile into "layer" and "backend", per call of a function.

    callgrind_split.py PROFILE FUNCTION_PREFIX BINARY

PROFILE is a callgrind output written with --dump-instr=yes and collection toggled on the
function (--toggle-collect). Every instruction's cost is attributed by where it comes from: the
inline chain of its address in BINARY (addr2line -i), innermost first. An instruction is
"backend" when any frame of that chain is a backend's (a file in backends/<name>/ other than
backends/api, a C source of jemalloc or mimalloc, or a function of a backend crate), or when it
lies outside BINARY (libc's malloc, free and memcpy); everything else is "layer": src/, the
trait's forwarding in backends/api, and standard-library code inlined into the layer itself.

Prints: calls, instructions per call, layer per call, backend per call.
"""
import re
import subprocess
import sys

BACKEND_FILE = re.compile(r'(^|/)backends/(?!api/)|jemalloc|mimalloc')
BACKEND_FN = re.compile(
    r'^<?(lmem_(slab|bump|system|jemalloc|mimalloc)|tikv_jemalloc|libmimalloc_sys|bumpalo)::'
    r'|^(mi_|_mi_|_rjem_|je_)')
# A cfn whose name is exactly the function (C functions) or starts with it (Rust generics).


def parse(profile):
    """(self cost per (object, address), calls of the function)."""
    names = {}

    def name(kind, rest):
        m = re.match(r'\((\d+)\)(?: (.*))?', rest)
        if not m:
            return rest.strip()
        key = (kind, m.group(1))
        if m.group(2):
            names[key] = m.group(2).strip()
        return names.get(key, '')

    cost = {}
    ob, addr, calls, skip, target, cfn = '', 0, 0, False, sys.argv[2], ''
    for line in open(profile):
        line = line.rstrip('\n')
        if not line:
            continue
        head = line.split('=', 1)[0]
        if head in ('ob',):
            ob = name('ob', line[3:])
            continue
        if head == 'cob':
            name('ob', line[4:])
            continue
        if head in ('cfi', 'cfl'):
            name('fl', line[4:])
            continue
        if head == 'cfn':
            cfn = name('fn', line[4:])
            continue
        if head in ('fl', 'fi', 'fe'):
            name('fl', line[3:])
            continue
        if head == 'fn':
            name('fn', line[3:])
            continue
        if head == 'calls':
            if cfn.startswith(target):
                calls += int(line[6:].split()[0])
            skip = True
            continue
        if line[0] not in '0123456789+-*':
            continue
        parts = line.split()
        a = parts[0]
        if a.startswith('0x'):
            addr = int(a, 16)
        elif a[0] == '+':
            addr += int(a[1:])
        elif a[0] == '-':
            addr -= int(a[1:])
        if skip:
            # The cost line after `calls=` is the callee's inclusive cost, not this one's.
            skip = False
            continue
        ir = int(parts[2]) if len(parts) > 2 else 0
        cost[(ob, addr)] = cost.get((ob, addr), 0) + ir
    return cost, calls


def inline_chains(binary, addrs):
    """addr -> [(function, file)] innermost first, from one addr2line run."""
    if not addrs:
        return {}
    text = '\n'.join(hex(a) for a in addrs) + '\n'
    out = subprocess.run(['addr2line', '-i', '-f', '-C', '-a', '-e', binary],
                         input=text, capture_output=True, text=True, check=True).stdout
    chains, cur = {}, None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith('0x'):
            cur = int(l, 16)
            chains[cur] = []
            i += 1
            continue
        fn = l
        loc = lines[i + 1] if i + 1 < len(lines) else '??:0'
        chains[cur].append((fn, loc.rsplit(':', 1)[0]))
        i += 2
    return chains


def main():
    profile, _, binary = sys.argv[1:4]
    cost, calls = parse(profile)
    own = binary.rsplit('/', 1)[-1]
    ours = sorted({a for (ob, a) in cost if ob.rsplit('/', 1)[-1] == own})
    chains = inline_chains(binary, ours)
    layer = backend = 0
    for (ob, a), ir in cost.items():
        if ob.rsplit('/', 1)[-1] != own:
            backend += ir
            continue
        chain = chains.get(a, [])
        if any(BACKEND_FILE.search(f) or BACKEND_FN.search(fn) for fn, f in chain):
            backend += ir
        else:
            layer += ir
    if calls == 0:
        print('0 - - -')
        return
    print(f'{calls} {(layer + backend) / calls:.1f} {layer / calls:.1f} {backend / calls:.1f}')


main()
