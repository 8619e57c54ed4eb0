#!/usr/bin/env python3
"""Where a workload's instructions go: benches/README.md's "What bounds `standard`" table.

Reads a callgrind profile taken with `--dump-instr=yes` (the command is in benches/README.md), maps
each instruction of the benchmark binary through its inlining chain (`addr2line -i`) to the
innermost function that belongs to one of the parts below, and prints instructions per
operation for each part. Instructions outside the binary (libc) are shown as one row.

    python3 benches/profile/parts.py callgrind.out target/release/engine-bench [ops]

It only reads the profile and the binary's debug information; it never runs anything else.
"""

import collections
import re
import subprocess
import sys

# (part, functions), looked for from the innermost inlined frame outwards: the first frame
# that matches any part decides. Ledger movements, vector pushes and hash lookups carry no
# part of their own, so they count for the part that called them.
PARTS = [
    ("the end-of-command flush", r"engine::engine::(Engine::flush|Engine::flush_levels|"
     r"for_each_by_key|for_each_in_sorted_order|sorted_indexes|flush_positions_merging|"
     r"push_position_change|sort_keep_first|sort_stable_by_key|position_sort_key)\b"),
    ("recording touched levels", r"engine::engine::Engine::touch_level\b"),
    ("settlement", r"engine::matching::settle_fill\b"),
    ("re-pricing a reserve", r"engine::matching::release_excess\b"),
    ("finishing orders", r"engine::matching::(finish_order|end_resting)\b"),
    ("a market order's dry run", r"engine::matching::(plan|plan_taker|affordable_qty)\b"),
    ("validating a placement", r"engine::matching::(validate_place|validate_shape|"
     r"validate_limit|validate_market|check_price|check_capacity|check_funds|check_shares|"
     r"check_reduce_only|protection_limit|would_take)\b"),
    ("matching", r"engine::matching::(take|walk|fill|rest|prevent_self_trade|reduce_resting|"
     r"crosses)\b"),
    ("placing", r"engine::matching::(execute_place|place|client_record|remember_client_id|"
     r"link_user)\b"),
    ("dispatch, the clock, cancels", r"engine::(manage::(cancel|owned_slot)|"
     r"engine::Engine::(advance_clock|execute|apply))\b"),
    ("the harness", r"^(benches::|engine_bench::|sim::rng)"),
]
# Out-of-line book helpers (a side's best level moving) called from matching and finishing.
FALLBACK = ("matching", r"^engine::book::")
OUTSIDE = "outside the binary (libc)"


def self_costs(profile, binary_name):
    """Instructions executed at each address of `binary_name`, and the total outside it."""
    costs = collections.Counter()
    outside = 0
    objects, current, address, after_call = {}, None, 0, False
    for line in open(profile):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        named = re.match(r"^(ob|cob)=\((\d+)\)(?: (.*))?$", line)
        if named:
            if named.group(3):
                objects[named.group(2)] = named.group(3)
            if named.group(1) == "ob":
                current = objects[named.group(2)]
            continue
        if line.startswith("calls="):
            after_call = True  # the next line is the call's inclusive cost, not self cost
            continue
        if "=" in line.split(" ")[0] or line[0] not in "0123456789+-*":
            continue
        fields = line.split()
        address = step(address, fields[0])
        if after_call:
            after_call = False
            continue
        if len(fields) >= 3:
            if current and current.endswith(binary_name):
                costs[address] += int(fields[2])
            else:
                outside += int(fields[2])
    return costs, outside


def step(address, field):
    """Callgrind's position compression: absolute, +/- relative, or `*` (the same)."""
    def number(text):
        return int(text, 16) if text.startswith("0x") else int(text)
    if field.startswith("+"):
        return address + number(field[1:])
    if field.startswith("-"):
        return address - number(field[1:])
    if field == "*":
        return address
    return number(field)


def inline_chains(binary, addresses):
    """Each address's function names, innermost first."""
    query = "".join(f"0x{address:x}\n" for address in addresses)
    lines = subprocess.run(["addr2line", "-e", binary, "-i", "-f", "-C", "-a"], input=query,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    chains, current, expect_function = {}, None, True
    for line in lines:
        if re.fullmatch(r"0x[0-9a-f]{16}", line):
            current, expect_function = int(line, 16), True
            chains[current] = []
        elif expect_function:
            chains[current].append(simplify(line))
            expect_function = False
        else:
            expect_function = True  # this was the function's file:line
    return chains


def simplify(function):
    function = re.sub(r"<impl [^>]*>::", "", function)
    for _ in range(3):
        function = re.sub(r"<[^<>]*>", "", function)
    return function


def part_of(chain):
    for function in chain:
        for part, pattern in PARTS:
            if re.search(pattern, function):
                return part
    if any(re.search(FALLBACK[1], function) for function in chain):
        return FALLBACK[0]
    return "not attributable"


def main():
    profile, binary = sys.argv[1], sys.argv[2]
    ops = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    costs, outside = self_costs(profile, binary.rsplit("/", 1)[-1])
    chains = inline_chains(binary, sorted(costs))
    parts = collections.Counter()
    for address, cost in costs.items():
        parts[part_of(chains.get(address, []))] += cost
    parts[OUTSIDE] += outside
    for part, cost in parts.most_common():
        print(f"{cost / ops:8.1f}  {part}")
    print(f"{sum(parts.values()) / ops:8.1f}  in all")


if __name__ == "__main__":
    main()
