"""Print the launch, occupancy and per-SM balance metrics of our kernels from ncu `--csv --page
details` reports (the device recipes' ncu steps: device_ncu_graph.sh, device_sched_whole.sh).

  python3 scripts/ncu_details.py report.csv ...
"""
from __future__ import annotations

import csv
import io
import sys

WANT = ("Duration", "DRAM Throughput", "Memory Throughput", "Achieved Occupancy", "Theoretical Occupancy",
        "Registers Per Thread", "Block Limit Registers", "Block Limit Shared Mem", "Grid Size", "Waves Per SM",
        "Dynamic Shared Memory Per Block", "Achieved Active Warps Per SM", "sm__ctas_launched.max",
        "sm__ctas_launched.min", "sm__cycles_active.max", "sm__cycles_active.min", "sm__cycles_active.avg",
        "dram__bytes_read.sum")


def main(paths: list[str]) -> None:
    for path in paths:
        print("==", path)
        try:
            txt = open(path).read()
            rows = list(csv.DictReader(io.StringIO(txt[txt.index('"ID"'):])))
        except Exception as e:             # noqa: BLE001 - a failed profile says why and the rest go on
            print("unreadable", e)
            continue
        for r in rows:
            if r.get("Metric Name") in WANT and r.get("Kernel Name", "").startswith("wb_"):
                print(f"  {r.get('Kernel Name', '')[:28]:28} {r['Metric Name']:36} {r.get('Metric Value', '')} "
                      f"{r.get('Metric Unit', '')}")


if __name__ == "__main__":
    main(sys.argv[1:])
