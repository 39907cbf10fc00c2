"""Summarise `mutmut results --all true`: the score per domain module and the surviving functions."""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path


def main(path: str) -> int:
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: Counter[str] = Counter()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*mailbot\.domain\.(\w+)\.(\S+?)__mutmut_\d+: (.+)", line)
        if not match:
            continue
        module, function, status = match.groups()
        status = status.split()[0]
        per_module[module][status] += 1
        if status in ("survived", "no"):
            # mutmut names functions x_name and methods xǁClassǁname.
            name = function[2:] if function.startswith(("x_", "xǁ")) else function
            survivors[f"{module}.{name.replace('ǁ', '.')}"] += 1
    total = Counter[str]()
    print("| module | mutants | killed | survived | no test reaches it | timeout |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        n = sum(counts.values())
        print(f"| {module} | {n} | {counts['killed']} | {counts['survived']} | {counts['no']} | {counts['timeout']} |")
    n = sum(total.values())
    killed = total["killed"] + total["timeout"]
    print(f"| all | {n} | {total['killed']} | {total['survived']} | {total['no']} | {total['timeout']} |")
    print(f"\nscore: {killed}/{n} = {100 * killed / max(n, 1):.1f}% killed (timeouts count as killed)")
    print("\nsurviving mutants per function (most first):")
    for name, count in survivors.most_common():
        print(f"  {count:4}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
